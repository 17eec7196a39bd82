"""Signed bodies the database cannot hold, and oversize bodies: never a 500.

The same tests run on SQLite and on PostgreSQL (DATABASE_URL): a genuine delivery the
database would refuse is stored as its escaped text and marked failed (acknowledged,
so Polar stops resending it); an oversize one is refused with 413 before parsing.
"""

from __future__ import annotations

import io
import logging
import uuid
from io import StringIO

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from polar_sync import services
from polar_sync.models import Customer, WebhookEvent
from polar_sync.webhooks import webhook_view
from tests.webhook_helpers import post, sign_headers

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]
Status = WebhookEvent.Status
MB = 1024 * 1024


@pytest.fixture
def web() -> Client:
    return Client()


def customer_event(data_json: str) -> bytes:
    """A customer.updated body whose ``data`` is the given JSON text (as sent, unparsed)."""
    return (
        '{"type": "customer.updated", "timestamp": "2025-06-01T00:00:00Z", "data": '
        + data_json
        + "}"
    ).encode()


def customer_json(extra: str) -> str:
    return f'{{"id": "{uuid.uuid4()}", "email": "a@example.com", {extra}}}'


DEEP = 100_000
UNSTORABLE = {
    # name: (the body, what the stored error says)
    "nested-100000-deep": (customer_event("[" * DEEP + "]" * DEEP), "nested deeper"),
    "nan": (customer_event(customer_json('"name": NaN')), "not finite"),
    "infinity": (customer_event(customer_json('"meter": Infinity')), "not finite"),
    "minus-infinity": (customer_event(customer_json('"meter": -Infinity')), "not finite"),
    "1e999": (customer_event(customer_json('"meter": 1e999')), "not finite"),
    "nul-in-value": (customer_event(customer_json(r'"name": "Ada\u0000"')), r"\u0000"),
    "nul-in-key": (customer_event(customer_json(r'"metadata": {"k\u0000": 1}')), r"\u0000"),
    "nul-deep": (customer_event(customer_json(r'"m": [{"a": [["\u0000"]]}]')), r"\u0000"),
    "lone-high-surrogate": (customer_event(customer_json(r'"name": "\ud800"')), "surrogate"),
    "lone-low-surrogate": (customer_event(customer_json(r'"name": "x\udc00y"')), "surrogate"),
    "surrogate-in-key": (customer_event(customer_json(r'"metadata": {"\ud800": 1}')), "surrogate"),
    "surrogate-in-type": (
        b'{"type": "customer.\\ud800", "timestamp": "2025-06-01T00:00:00Z", "data": {}}',
        "surrogate",
    ),
}


@pytest.mark.parametrize("name", list(UNSTORABLE))
def test_a_signed_body_the_database_refuses_is_stored_failed_not_a_500(
    web, name, caplog, django_capture_on_commit_callbacks
):
    body, reason = UNSTORABLE[name]
    with (
        caplog.at_level(logging.WARNING, logger="polar_sync.webhooks"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = post(web, body, sign_headers(body, webhook_id=f"msg_{name}"))
    assert response.status_code == 202, response.content
    event = WebhookEvent.objects.get(webhook_id=f"msg_{name}")
    assert event.status == Status.FAILED and reason in event.error
    # The exact text Polar sent is kept (it is ASCII here, so nothing needed escaping).
    assert event.payload["unstorable_body"] == body.decode()
    assert callbacks == [] and not Customer.objects.exists()  # nothing was applied
    assert any(f"msg_{name}" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    # A replay does not crash either, and keeps the reason.
    outcomes = services.webhook_events_replay(ids=[event.pk])
    event.refresh_from_db()
    assert outcomes == {Status.FAILED: 1} and reason in event.error


def test_a_control_character_in_the_webhook_id_is_a_400(web):
    body = customer_event(customer_json('"name": "Ada"'))
    response = post(web, body, sign_headers(body, webhook_id="msg_\x00"))
    assert response.status_code == 400 and b"control characters" in response.content
    assert not WebhookEvent.objects.exists()


def test_a_timestamp_that_leaves_the_datetime_range_in_utc_is_stored(web):
    body = (
        b'{"type": "customer.updated", "timestamp": "0001-01-01T00:00:00+01:00", "data": '
        + customer_json('"name": "Ada"').encode()
        + b"}"
    )
    assert post(web, body, sign_headers(body, webhook_id="msg_y1")).status_code == 202
    assert WebhookEvent.objects.get(webhook_id="msg_y1").occurred_at is None


# -- size ---------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid, signed-able JSON body of exactly ``size`` bytes."""
    body = customer_event(customer_json('"name": "Ada"'))
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_the_default_limit_is_one_megabyte_and_a_larger_body_is_a_413(web, caplog):
    at_limit, over = padded(MB), padded(MB + 1)
    assert post(web, at_limit, sign_headers(at_limit)).status_code == 202
    with caplog.at_level(logging.WARNING, logger="polar_sync.webhooks"):
        response = post(web, over, sign_headers(over))
    assert response.status_code == 413
    assert "over the limit of 1048576 bytes" in response.json()["detail"]
    assert "rejected with 413" in caplog.text
    assert WebhookEvent.objects.count() == 1


def test_an_oversize_body_is_refused_before_verification_or_parsing(web, settings):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_MAX_BODY_BYTES": 20_000}
    body = b"[" * 30_000  # neither signed nor JSON: the size alone decides
    response = post(
        web, body, {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,x"}
    )
    assert response.status_code == 413
    assert "30000 bytes" in response.json()["detail"]  # from Content-Length, unread
    small = padded(19_000)
    assert post(web, small, sign_headers(small)).status_code == 202


def test_the_read_stops_at_the_limit_when_no_length_is_declared(settings):
    """An ASGI request without Content-Length: the body read itself is bounded."""
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_MAX_BODY_BYTES": 20_000}
    body = padded(25_000)
    headers = [(k.encode(), v.encode()) for k, v in sign_headers(body).items()]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/polar/webhooks/",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
    }
    stream = io.BytesIO(body)
    response = webhook_view(ASGIRequest(scope, stream))
    assert response.status_code == 413
    assert stream.tell() == 20_001  # read one byte past the limit, no further
    assert not WebhookEvent.objects.exists()


def test_a_tiny_body_limit_is_a_system_check_error():
    conf = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox", "WEBHOOK_MAX_BODY_BYTES": 100}
    with override_settings(POLAR_SYNC=conf), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert "polar_sync.E010" in str(info.value) and "WEBHOOK_MAX_BODY_BYTES" in str(info.value)
