"""Webhook deliveries signed and sent exactly as GitHub sends them."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import httpx

from bot.outside.tls import tls_context
from webhooks import signature

HOOK_ID = 424242
USER_AGENT = "GitHub-Hookshot/7a1c2b3"
# GitHub gives up on a delivery after ten seconds.
DELIVERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Delivery:
    """One webhook delivery and how the receiver answered it."""

    status_code: int
    elapsed_s: float
    delivery_id: str
    event: str
    payload: dict
    response_text: str = ""


def signatures(secret: str, body: bytes) -> dict[str, str]:
    """The X-Hub-Signature-256 (HMAC-SHA256) and legacy X-Hub-Signature (HMAC-SHA1) headers."""
    return {"X-Hub-Signature-256": signature.sign(secret, body), "X-Hub-Signature": signature.sign_legacy(secret, body)}


def deliver(url: str, event: str, payload: dict, *, secret: str | None, app_id: int,
            delivery_id: str | None = None, signature: str | None = None) -> Delivery:
    """POST one event to `url`; a given `signature` replaces the computed X-Hub-Signature-256 (forgeries)."""
    delivery_id = delivery_id or str(uuid.uuid4())
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-GitHub-Hook-ID": str(HOOK_ID),
        "X-GitHub-Hook-Installation-Target-ID": str(app_id),
        "X-GitHub-Hook-Installation-Target-Type": "integration",
    }
    if secret is not None:
        headers.update(signatures(secret, body))
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    started = time.monotonic()
    response = httpx.post(url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT_S,
                          trust_env=False, verify=tls_context())
    return Delivery(response.status_code, time.monotonic() - started, delivery_id, event, payload,
                    response.text[:2000])
