"""API versions: the setting, the header sent, the version served, and a version the
server does not support (404 ``{"detail": "Not Found"}`` on every route)."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.checks import run_checks
from django.test import Client

from polar_sync.client import PolarClient
from polar_sync.conf import polar_settings
from polar_sync.exceptions import PolarEndpointNotAvailableError
from polar_sync.models import Customer, PushOutbox, SyncRun, WebhookEvent
from polar_sync.services import customers_pull, states_refresh, webhooks
from polar_sync.services.push import outbox_drain
from polar_sync.services.remote import customer_delete_in_polar
from polar_sync.status_selectors import sync_status
from tests.conftest import BASE_URL, TOKEN, load_fixture
from tests.push_support import make_user, polar_customer
from tests.webhook_helpers import post, sign_headers

pytestmark = pytest.mark.django_db

CID = "992fae2a-2a17-4b7a-8d9e-e287cf90131b"


def test_the_default_is_2026_04_and_a_change_is_read_again(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": TOKEN}
    assert polar_settings().API_VERSION == "2026-04"
    settings.POLAR_SYNC = {"ACCESS_TOKEN": TOKEN, "API_VERSION": None}
    assert polar_settings().API_VERSION is None
    assert PolarClient.from_settings().api_version is None


@pytest.mark.parametrize(
    ("value", "rejected"),
    [("2025-10", True), ("2026-4", True), ("latest", True), (None, False), ("2026-04", False),
     ("2026-10", False), ("2027-01", False)],
)  # fmt: skip
def test_a_version_polar_sync_does_not_speak_is_a_system_check_error(settings, value, rejected):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": TOKEN, "API_VERSION": value}
    errors = [m for m in run_checks() if m.id == "polar_sync.E012"]
    assert len(errors) == rejected
    if rejected:
        assert "'2026-04', '2026-10', '2027-01', or None" in errors[0].hint


def test_the_version_served_is_recorded_and_a_mismatch_warned_once_per_run(polar_http, caplog):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json=load_fixture("customer"))
    client = PolarClient(access_token=TOKEN, server=BASE_URL, max_retries=0)
    caplog.set_level(logging.WARNING, logger="polar_sync.client")
    for _ in range(3):
        client.get(CID)  # no Polar-Version in the answer: a server of the 2025-10 era
    assert client.served_api_version == "2025-10"
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "served API version 2025-10" in warnings[0]
    client.forget_served_version()  # a new run warns again
    client.get(CID)
    assert len(caplog.records) == 2


def test_an_answer_of_the_version_asked_for_is_no_warning(polar_http, caplog):
    polar_http.get(
        f"{BASE_URL}/v1/customers/{CID}",
        json=load_fixture("customer"),
        headers={"Polar-Version": "2026-10"},
    )
    client = PolarClient(access_token=TOKEN, server=BASE_URL, api_version="2026-10")
    client.get(CID)
    assert client.served_api_version == "2026-10"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_run_records_the_version_served_and_the_status_page_shows_it(
    live_polar, admin_client, caplog
):
    live_polar.store.seed(5)
    caplog.set_level(logging.INFO, logger="polar_sync.sync")
    run = customers_pull()
    assert "customers sync run" in caplog.text and "API version served: 2026-04" in caplog.text
    assert run.api_version == "2026-04"
    assert sync_status().api_version_served == "2026-04"
    page = admin_client.get("/admin/polar_sync/syncrun/status/").content.decode()
    assert "served: 2026-04" in page and "asked for: 2026-04" in page
    assert "API version 2026-04 has no /balance" in page  # the balances row says why


# ---------------------------------------------- a version the server does not support


@pytest.fixture
def unsupported(live_polar, polar_conf):
    """A mirrored customer; then API_VERSION names a version the server does not serve."""
    customer = live_polar.store.add_customer(email="ada@example.com", external_id="ada")
    customers_pull()
    polar_conf(API_VERSION="2025-10")  # Polar answers 404 {"detail": "Not Found"}
    return customer


@pytest.mark.parametrize(
    ("operation", "args"),
    [
        ("get", ("id",)),
        ("update", ("id", {"name": "x"})),
        ("delete", ("id",)),
        ("get_state", ("id",)),
        ("get_external", ("ada",)),
        ("update_external", ("ada", {"name": "x"})),
        ("delete_external", ("ada",)),
        ("list", ()),
    ],
)
def test_every_route_of_an_unsupported_version_is_never_not_found(
    live_polar, unsupported, operation, args
):
    client = PolarClient.from_settings()
    args = tuple(unsupported["id"] if a == "id" else a for a in args)
    with pytest.raises(PolarEndpointNotAvailableError, match="may not support API version"):
        getattr(client, operation)(*args)
    assert live_polar.store.get_customer(unsupported["id"]) is not None  # nothing deleted


def test_a_pull_refresh_or_delete_at_an_unsupported_version_changes_nothing(
    live_polar, unsupported
):
    live_polar.store.add_customer(email="new@example.com")
    run = customers_pull()
    assert run.status == SyncRun.Status.FAILED and "API version '2025-10'" in run.error
    assert list(Customer.objects.values_list("email", "deleted_at")) == [("ada@example.com", None)]
    run = states_refresh()
    assert run.status == SyncRun.Status.FAILED and not run.endpoint_missing
    assert Customer.objects.get().deleted_at is None
    with pytest.raises(PolarEndpointNotAvailableError):  # the admin's "delete in Polar"
        customer_delete_in_polar(customer_id=unsupported["id"])
    assert Customer.objects.get().deleted_at is None
    assert live_polar.store.get_customer(unsupported["id"]) is not None


@pytest.mark.django_db(transaction=True)
def test_a_push_at_an_unsupported_version_creates_and_deletes_nothing(live_polar, unsupported):
    user = make_user(email="grace@example.com")  # pushed after commit, in-process
    assert polar_customer(live_polar, user.pk) is None
    row = PushOutbox.objects.get(external_id=str(user.pk))
    assert "may not support API version" in row.last_error
    live_polar.store.reset_requests()
    assert live_polar.store.request_counts["customers:create"] == 0
    external_id = str(user.pk)
    user.delete()
    outbox_drain(retry_failed=True)
    delete = PushOutbox.objects.get(external_id=external_id)  # not counted as done
    assert (delete.action, delete.status) == ("delete", "failed")
    assert live_polar.store.get_customer(unsupported["id"]) is not None


def tax_payload(user):
    """A USER_PAYLOAD carrying a tax ID as a [value, format] pair, and its country."""
    return {
        "email": user.email,
        "billing_address": {"country": "FR"},
        "tax_id": ["FR61954506077", "eu_vat"],
    }


@pytest.mark.django_db(transaction=True)
def test_a_push_sends_tax_id_as_the_version_takes_it(live_polar_any, polar_conf):
    """Pair for a server of the 2025-10 era, string in 2026: Polar stores the pair."""
    polar_conf(USER_PAYLOAD="tests.test_api_versions.tax_payload", USER_FIELDS=[])
    user = make_user(email="tax@example.com")
    customer = polar_customer(live_polar_any, user.pk)
    assert customer is not None and customer["tax_id"] == ["FR61954506077", "eu_vat"]
    mirror = Customer.objects.get(external_id=str(user.pk))
    assert mirror.tax_id == ["FR61954506077", "eu_vat"]
    assert mirror.type == (None if live_polar_any.api_version == "2025-10" else "individual")
    assert not PushOutbox.objects.exists()


@pytest.mark.parametrize(
    ("setting", "sent", "warned"),
    [("2026-04", "2026-04", False), ("2026-04", "2026-10", True), (None, "2026-04", True)],
)
def test_a_webhooks_api_version_is_stored_and_a_mismatch_logged(
    django_capture_on_commit_callbacks, webhook_secret, polar_conf, caplog, setting, sent, warned
):
    polar_conf(API_VERSION=setting)
    webhooks._warned_versions.clear()
    data = load_fixture("customer_2026_team")
    event = {"type": "customer.created", "timestamp": data["created_at"], "data": data}
    body = json.dumps({**event, "api_version": sent}).encode()
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert post(Client(), body, sign_headers(body)).status_code == 202
    assert set(WebhookEvent.objects.values_list("api_version", flat=True)) == {sent}
    assert Customer.objects.get().type == "team"
    mismatches = [r for r in caplog.records if "was sent for API version" in r.getMessage()]
    assert len(mismatches) == (1 if warned else 0)  # once, not per delivery
