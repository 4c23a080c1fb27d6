"""The admin token at the HTTP edge: `Authorization: Bearer`, the dashboard's session cookie, the logout form.

Pure: no I/O. Every comparison hashes both sides first and compares the digests in constant time,
so neither the content nor the length of the token leaks through timing. The cookie holds a value
derived from the token (never the token itself); changing the token ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION_COOKIE = "agentcoder_session"


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "replace")).digest()


class AdminAuth:
    """Checks requests against AGENTCODER_ADMIN_TOKEN."""

    def __init__(self, token: str):
        self._key = token.encode()
        self._token = _digest(token)

    def token_matches(self, given: str) -> bool:
        """True when `given` is the admin token (constant time)."""
        return hmac.compare_digest(_digest(given), self._token)

    def _derived(self, purpose: str) -> str:
        return hmac.new(self._key, f"agentcoder-dashboard:{purpose}".encode(), hashlib.sha256).hexdigest()

    @property
    def session_value(self) -> str:
        """What the session cookie holds after a good login."""
        return self._derived("session")

    @property
    def logout_token(self) -> str:
        """The anti-CSRF field of the logout form."""
        return self._derived("logout")

    def bearer(self, request: Request) -> bool | None:
        """None without an Authorization header; else whether it is `Bearer <the admin token>`."""
        header = request.headers.get("Authorization")
        if header is None:
            return None
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(given.strip())

    def has_session(self, request: Request) -> bool:
        """True when the request carries the session cookie of a good login."""
        value = request.cookies.get(SESSION_COOKIE, "")
        return hmac.compare_digest(_digest(value), _digest(self.session_value))

    def logout_allowed(self, request: Request, form_token: str) -> bool:
        """A logout needs the session and the form's anti-CSRF token (a cross-site form cannot know it)."""
        return self.has_session(request) and hmac.compare_digest(_digest(form_token), _digest(self.logout_token))


def local_path(target: str | None, default: str = "/") -> str:
    """`target` when it is a path on this site (no scheme, no host, no `//` or backslash tricks), else `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(char) < 32 for char in target):
        return default
    return target
