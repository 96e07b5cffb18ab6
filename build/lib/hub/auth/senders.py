"""Where one-time login codes go: pluggable senders.

``LogSender`` (the default) writes the code to the log, for development and demos. ``WebhookSender``
posts it to an SMS gateway: a JSON body signed with HMAC-SHA256 over ``<timestamp>.<body>`` with a
shared secret, so the gateway can check that the hub sent it and refuse replays (docs/security.md).
Tests inject their own sender through the app's services.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime
from typing import Protocol

import httpx

log = logging.getLogger("hub.login")


class CodeSender(Protocol):
    async def send(self, phone: str, code: str, expires_at: datetime) -> None:
        """Deliver ``code`` to ``phone`` (E.164 digits without the plus)."""


def masked(phone: str) -> str:
    """``+86138****0000``: enough to tell numbers apart in a log, not enough to call one."""
    return f"+{phone[:-8]}****{phone[-4:]}" if len(phone) > 8 else "+****"


class LogSender:
    async def send(self, phone: str, code: str, expires_at: datetime) -> None:
        log.warning(
            "login code for %s: %s (valid until %s; the log sender is for development:"
            " set HUB_LOGIN_CODE_WEBHOOK_URL to send codes through an SMS gateway)",
            masked(phone),
            code,
            expires_at.isoformat(),
        )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value: ``sha256=`` and the hex HMAC of ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSender:
    """POSTs ``{"phone": "+86…", "code": "…", "expiresAt": "…", "purpose": "login"}`` to a gateway."""

    def __init__(self, url: str, secret: str, client: httpx.AsyncClient | None = None) -> None:
        if not secret:
            raise ValueError("a webhook sender needs a secret to sign with")
        self.url = url
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=5.0)

    async def send(self, phone: str, code: str, expires_at: datetime) -> None:
        body = json.dumps(
            {"phone": f"+{phone}", "code": code, "expiresAt": expires_at.isoformat(), "purpose": "login"},
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-hub-timestamp": timestamp,
            "x-hub-signature": sign(self._secret, timestamp, body),
        }
        response = await self._client.post(self.url, content=body, headers=headers)
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()
