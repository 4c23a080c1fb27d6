"""One TLS context for every HTTP client the process opens.

githubkit opens an HTTP client per call made outside a `with`, and httpx loads the trust store for
each new client: about 35 ms of CPU every time. Loaded once here, it is shared (an `ssl.SSLContext`
may serve many connections and threads).
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's trust store), built once."""
    return httpx.create_ssl_context()
