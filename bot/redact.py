"""Secrets out of text: everything shown to a person (job list, comments, logs) passes through here."""

from __future__ import annotations

import re

# Credentials in URLs (https://x-access-token:TOKEN@host), GitHub tokens in both installation-token formats
# (`ghs_` + 36 characters, and from 2026-04 `ghs_<app id>_<header>.<payload>.<signature>`), other token-shaped
# words, and bearer/token headers.
_SECRET_PATTERNS = (
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "***@"),
    (re.compile(r"\b(?:gh[pousr]_|github_pat_|sk-)[A-Za-z0-9_\-]{8,}(?:\.[A-Za-z0-9_\-]+){0,2}"), "***"),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{6,}\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), "***"),  # a bare JWT
    (re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._\-]{8,}"), r"\1 ***"),
)


def redact(text: str) -> str:
    """`text` with credential-shaped parts masked."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """`<ExceptionType>: message` on one line, shortened, with credential-shaped text masked."""
    message = redact(" ".join(str(exc).split()))
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
