"""Standard Webhooks signing and verification, and which URLs webhooks may go to.

Headers: ``webhook-id`` (the message id, the same on every retry), ``webhook-timestamp``
(wall-clock Unix seconds of this attempt, so receivers' tolerance windows work) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the ``whsec_``
secret. Used by the server's outbox and by the receiver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from qcog_mock.mockserver.clock import wall_time
from qcog_mock.mockserver.errors import Invalid

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with '{SECRET_PREFIX}'")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None


def check_secret(secret: str) -> str:
    _key(secret)
    return secret


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class VerificationError(Exception):
    pass


def verify(
    secret: str, headers: Mapping[str, str], body: str, now: float | None = None
) -> dict[str, Any]:
    """The parsed payload of a genuine delivery; ``VerificationError`` otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise VerificationError("missing or malformed webhook headers") from None
    now = wall_time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise VerificationError("timestamp outside the tolerance window")
    expected = sign(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise VerificationError("no matching signature")
    return json.loads(body)


# Targets ------------------------------------------------------------------------------------


def check_url(url: str, *, allow_remote: bool, field: str = "local_webhook_url") -> str:
    """An http(s) URL; by default only on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"{field}: '{url}' is not an http(s) URL such as http://127.0.0.1:8080/hook.")
    if not allow_remote and not is_loopback(parts.hostname):
        raise Invalid(
            f"{field}: '{url}' is not on this machine; qcog-mock posts webhooks to loopback "
            "addresses only unless started with --allow-remote-webhooks."
        )
    return url


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
