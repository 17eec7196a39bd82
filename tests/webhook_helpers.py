"""Signing and posting webhook deliveries in tests, the way Polar does.

Signatures are made with the ``standardwebhooks`` package itself (the secret's raw
bytes, base64-encoded for it), independently of the code under test.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from tests.conftest import load_fixture

SECRET = "polar_whs_test_secret_never_logged_0123456789"
URL = "/polar/webhooks/"


def event_body(event_type: str, data: dict[str, Any], *, timestamp: str | None = None) -> bytes:
    """A Webhook*Payload body: ``{"type", "timestamp", "data"}``."""
    timestamp = timestamp or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}).encode()


def sign_headers(
    body: bytes,
    *,
    secret: str = SECRET,
    webhook_id: str | None = None,
    sent_at: float | None = None,
    standard_key: bool = False,
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed at ``sent_at`` (default now).

    Signed with the secret's raw bytes, as Polar does, or with ``standard_key`` the way a
    Standard Webhooks library reads a ``whsec_<base64>`` secret (the decoded key).
    """
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    moment = datetime.fromtimestamp(
        sent_at if sent_at is not None else datetime.now(UTC).timestamp(), tz=UTC
    )
    signer = Webhook(secret if standard_key else base64.b64encode(secret.encode()).decode())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signer.sign(webhook_id, moment, body.decode()),
    }


def post(client: Any, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def deliver(client: Any, event_type: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """Sign and post one event; ``webhook_id``/``timestamp`` may be given."""
    body = event_body(event_type, data, timestamp=kwargs.pop("timestamp", None))
    return post(client, body, sign_headers(body, **kwargs))


def state_payload(customer_id: str, **overrides: Any) -> dict[str, Any]:
    """The fixture CustomerState, for ``customer_id``."""
    payload = load_fixture("state")
    payload.update(id=customer_id, **overrides)
    return payload


def customer_data(customer_id: str, **overrides: Any) -> dict[str, Any]:
    payload = load_fixture("customer")
    payload.update(id=customer_id, **overrides)
    return payload
