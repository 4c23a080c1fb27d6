"""Secret masking for every error text a person may read (job list, status comments, logs)."""

from __future__ import annotations

import re

# Credentials in URLs (https://x-access-token:TOKEN@host) and token-shaped words.
_SECRET_PATTERNS = (
    (re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "***@"),
    (re.compile(r"\b(?:gh[pousr]_|github_pat_|sk-)[A-Za-z0-9_\-]{8,}"), "***"),
    (re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._\-]{8,}"), r"\1 ***"),
)


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """`<ExceptionType>: message` on one line, shortened, with credential-shaped text masked."""
    message = " ".join(str(exc).split())
    for pattern, replacement in _SECRET_PATTERNS:
        message = pattern.sub(replacement, message)
    if len(message) > limit:
        message = message[: limit - 1] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
