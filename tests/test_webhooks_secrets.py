"""No secret on a DEBUG error page: Django's technical 500 page for a failure raised
inside webhook verification shows neither the secret, nor its base64, nor the key
bytes derived from it, nor the access token."""

from __future__ import annotations

import base64
import hmac
import sys
import uuid
from typing import Any

import pytest
from django.test import RequestFactory
from django.views.debug import ExceptionReporter, technical_500_response

from polar_sync.webhooks import webhook_view
from tests.conftest import TOKEN
from tests.webhook_helpers import URL, customer_data, event_body, sign_headers

pytestmark = pytest.mark.django_db

KEY_BYTES = b"derived-key-material-0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY_BYTES).decode()


def forbidden() -> list[str]:
    """Every form of the secrets a page must not show."""
    raw = SECRET.encode()
    return [
        SECRET,
        SECRET.removeprefix("whsec_"),  # the base64 of the key bytes
        base64.b64encode(raw).decode(),  # what the verifier was given before
        repr(raw)[2:-1],
        raw.hex(),
        repr(KEY_BYTES)[2:-1],
        KEY_BYTES.hex(),
        TOKEN,
    ]


@pytest.fixture(autouse=True)
def debug_with_secrets(settings):
    settings.DEBUG = True
    settings.POLAR_SYNC = {
        **settings.POLAR_SYNC,
        "ACCESS_TOKEN": TOKEN,
        "WEBHOOK_SECRET": SECRET,
    }


def failing_delivery(monkeypatch, target: str) -> tuple[Any, Any]:
    """Post a delivery while ``hmac.<target>`` raises; returns (request, exc_info)."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom in hmac.{target}")

    body = event_body("customer.created", customer_data(str(uuid.uuid4())))
    headers = sign_headers(body, secret=SECRET)  # signed with the raw bytes, as Polar does
    monkeypatch.setattr(hmac, target, boom)
    request = RequestFactory().post(
        URL, data=body, content_type="application/json", headers=headers
    )
    try:
        webhook_view(request)
    except Exception:
        return request, sys.exc_info()
    raise AssertionError("the delivery did not fail")


@pytest.mark.parametrize("target", ["compare_digest", "new"])
def test_the_debug_500_page_of_a_failure_inside_verification_shows_no_secret(monkeypatch, target):
    request, exc_info = failing_delivery(monkeypatch, target)
    monkeypatch.undo()
    html = technical_500_response(request, *exc_info).content.decode()
    text = ExceptionReporter(request, *exc_info).get_traceback_text()
    # The page does show the frames' locals, the settings object among them.
    assert "Local vars" in html and "PolarSyncSettings(" in html and "webhook_verify" in html
    for page in (html, text):
        shown = [value for value in forbidden() if value in page]
        assert shown == []


def test_the_key_holder_has_a_redacted_repr(settings):
    from polar_sync.conf import polar_settings
    from polar_sync.services.webhook_body import WebhookKeys

    keys = WebhookKeys(polar_settings())
    assert repr(keys) == "<WebhookKeys ***>" and str(keys) == "<WebhookKeys ***>"
    assert not hasattr(keys, "__dict__")  # nothing but the HMAC objects is kept
