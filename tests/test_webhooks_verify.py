"""The webhook endpoint's door: signature checks, and nothing stored for a bad delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from polar_sync.models import WebhookEvent
from tests.webhook_helpers import (
    SECRET,
    URL,
    customer_data,
    event_body,
    post,
    sign_headers,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def web() -> Client:
    """Django's test client (``client`` is the Polar API client in this suite)."""
    return Client()


@pytest.fixture
def body() -> bytes:
    return event_body("customer.created", customer_data(str(uuid.uuid4())))


def assert_rejected(response, status: int, caplog, reason: str) -> None:
    assert response.status_code == status, response.content
    assert WebhookEvent.objects.count() == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "polar_sync.webhooks"]
    assert any(reason in line for line in lines), lines
    # Neither the secret nor a signature reaches the log or the answer.
    assert SECRET not in caplog.text and "v1," not in caplog.text
    assert SECRET.encode() not in response.content


def test_good_signature_is_stored_and_answered_202(body, django_capture_on_commit_callbacks):
    headers = sign_headers(body, webhook_id="msg_good")
    csrf_client = Client(enforce_csrf_checks=True)  # Polar sends no CSRF token
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(csrf_client, body, headers)
    assert response.status_code == 202
    assert response.json() == {"webhook_id": "msg_good", "duplicate": False}
    event = WebhookEvent.objects.get()
    assert (event.webhook_id, event.event_type, event.status) == (
        "msg_good",
        "customer.created",
        WebhookEvent.Status.PROCESSED,
    )
    assert len(callbacks) == 1  # processing was enqueued on commit


def test_signature_with_another_secret_is_rejected(web, body, caplog):
    response = post(web, body, sign_headers(body, secret="polar_whs_someone_else"))
    assert_rejected(response, 401, caplog, "signature does not match")


def test_tampered_body_is_rejected(web, body, caplog):
    headers = sign_headers(body)
    tampered = body.replace(b'"ada@example.com"', b'"eve@example.com"')
    assert tampered != body
    assert_rejected(post(web, tampered, headers), 401, caplog, "signature does not match")


def test_garbage_signature_header_is_a_401_not_a_crash(web, body, caplog):
    headers = {**sign_headers(body), "webhook-signature": "not-a-signature"}
    assert_rejected(post(web, body, headers), 401, caplog, "signature does not match")


def test_signature_of_another_webhook_id_is_rejected(web, body, caplog):
    headers = {**sign_headers(body, webhook_id="msg_a"), "webhook-id": "msg_b"}
    assert_rejected(post(web, body, headers), 401, caplog, "signature does not match")


# 60 s past the limit: a slow machine must not carry "too new" back inside it.
@pytest.mark.parametrize("offset", [-360, 360], ids=["too-old", "too-new"])
def test_timestamp_outside_the_tolerance_is_rejected(web, body, caplog, offset):
    headers = sign_headers(body, sent_at=time.time() + offset)
    assert_rejected(post(web, body, headers), 401, caplog, "outside the tolerance of 300s")


def test_timestamp_just_inside_the_tolerance_is_accepted(web, body):
    headers = sign_headers(body, sent_at=time.time() - 290)
    assert post(web, body, headers).status_code == 202


def test_a_wider_tolerance_is_honoured_by_the_verifier(web, body, settings):
    # standardwebhooks has a fixed 5-minute window; WEBHOOK_TOLERANCE replaces it.
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_TOLERANCE": 900}
    headers = sign_headers(body, sent_at=time.time() - 600)
    assert post(web, body, headers).status_code == 202


def test_a_narrower_tolerance_is_honoured(web, body, settings, caplog):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_TOLERANCE": 10}
    headers = sign_headers(body, sent_at=time.time() - 60)
    assert_rejected(post(web, body, headers), 401, caplog, "outside the tolerance of 10s")


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected(web, body, caplog, missing):
    headers = sign_headers(body)
    del headers[missing]
    assert_rejected(post(web, body, headers), 400, caplog, f"missing header(s): {missing}")


def test_no_headers_at_all(web, body, caplog):
    assert_rejected(post(web, body, {}), 400, caplog, "missing header(s)")


def test_non_numeric_timestamp_is_rejected(web, body, caplog):
    headers = {**sign_headers(body), "webhook-timestamp": "yesterday"}
    assert_rejected(post(web, body, headers), 400, caplog, "not a Unix timestamp")


def test_signed_body_that_is_not_json_is_rejected(web, caplog):
    body = b"this is not json"
    assert_rejected(post(web, body, sign_headers(body)), 400, caplog, "not JSON")


def test_unset_secret_answers_503_so_polar_retries(web, body, settings, caplog):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_SECRET": ""}
    with caplog.at_level(logging.ERROR, logger="polar_sync.webhooks"):
        response = post(web, body, sign_headers(body))
    assert_rejected(response, 503, caplog, "WEBHOOK_SECRET")


def test_only_post_is_allowed(web):
    assert web.get(URL).status_code == 405
    assert WebhookEvent.objects.count() == 0


# -- system checks ------------------------------------------------------------------------


def test_missing_secret_warns_on_deploy_check_with_a_hint():
    out = StringIO()
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox"}):
        call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=out)
    output = out.getvalue()
    assert "polar_sync.W003" in output and "/polar/webhooks/" in output and "HINT" in output


def test_set_secret_does_not_warn_on_deploy_check():
    out = StringIO()
    conf = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox", "WEBHOOK_SECRET": SECRET}
    with override_settings(POLAR_SYNC=conf):
        call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=out)
    assert "polar_sync.W003" not in out.getvalue()
    assert SECRET not in out.getvalue()


def test_missing_secret_does_not_warn_when_the_route_is_not_included():
    out = StringIO()
    conf = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox"}
    with override_settings(POLAR_SYNC=conf, ROOT_URLCONF="tests.urls_without_polar"):
        call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=out)
    assert "polar_sync.W003" not in out.getvalue()


def test_non_positive_tolerance_is_an_error():
    conf = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox", "WEBHOOK_TOLERANCE": 0}
    with override_settings(POLAR_SYNC=conf), pytest.raises(SystemCheckError) as info:
        call_command("check", stdout=StringIO(), stderr=StringIO())
    assert "polar_sync.E006" in str(info.value) and "WEBHOOK_TOLERANCE" in str(info.value)


# -- whsec_ secrets -------------------------------------------------------------------------


def test_a_whsec_secret_verifies_as_raw_bytes_and_as_the_standard_webhooks_key(
    web, body, settings, caplog
):
    secret = "whsec_" + base64.b64encode(b"standard-webhooks-key-24-bytes!").decode()
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_SECRET": secret}
    # Polar's clients: the secret's raw bytes are the key.
    assert post(web, body, sign_headers(body, secret=secret)).status_code == 202
    # Polar's newest client / any Standard Webhooks library: the decoded part after whsec_.
    headers = sign_headers(body, secret=secret, standard_key=True)
    assert post(web, body, headers).status_code == 202
    # Neither form of another whsec_ secret verifies.
    other = "whsec_" + base64.b64encode(b"another-key-of-24-bytes!!").decode()
    for standard_key in (False, True):
        headers = sign_headers(body, secret=other, standard_key=standard_key)
        assert post(web, body, headers).status_code == 401
    assert WebhookEvent.objects.count() == 2
    # ``whsec_`` alone decodes to an empty key, which anyone could sign with: not tried.
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_SECRET": "whsec_"}
    webhook_id, sent_at = "msg_empty_key", int(time.time())
    digest = hmac.new(b"", f"{webhook_id}.{sent_at}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert post(web, body, headers).status_code == 401
