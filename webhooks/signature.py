"""GitHub's webhook signatures, as pure functions: the edge verifies with them, the stand-in signs with them."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value GitHub sends for this body (HMAC-SHA256 of the raw bytes)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_legacy(secret: str, body: bytes) -> str:
    """The legacy `X-Hub-Signature` value (HMAC-SHA1) GitHub still sends beside it; never trusted here."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is the sha256 HMAC of the raw body, compared in constant time.

    A SHA-1-only signature is refused: GitHub sends `X-Hub-Signature-256` on every delivery.
    """
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.encode("utf-8", "replace"))
