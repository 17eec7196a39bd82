"""Admin actions against the local Polar server: refresh, sync now, delete in Polar."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from kombu.exceptions import OperationalError

from polar_sync.exceptions import PolarServerError
from polar_sync.models import Customer, StateSubscription, SyncRun
from polar_sync.services import customer_refresh, customer_upsert
from polar_sync.services.remote import customer_delete_in_polar
from tests.conftest import polar_in_use
from tests.factories import make_customer
from tests.mirror_helpers import PRODUCT, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")
SYNC_NOW = reverse("admin:polar_sync_customer_sync_now")


@pytest.fixture
def web() -> Client:
    return Client()


@pytest.fixture
def in_polar(request):
    """A customer in Polar with a subscription and a benefit, mirrored without its state
    (on ``live_polar``, or ``live_polar_2025`` when the test asks for it)."""
    store = polar_in_use(request).store
    payload = store.add_customer(email="ada@example.com", external_id="ada")
    store.start_subscription(payload["id"], product_id=PRODUCT, amount=2900)
    store.grant_benefit(payload["id"], "license_keys")
    store.set_balance(payload["id"], 700)
    return customer_upsert(payload=payload)


def run_action(client: Client, action: str, *customers: Customer, **extra: str):
    data = {"action": action, "_selected_action": [str(c.pk) for c in customers], **extra}
    if "post" not in extra:
        data["index"] = "0"
    return client.post(CHANGELIST, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_refresh_action_fetches_state_and_balance(admin_client, live_polar_2025, in_polar):
    response = run_action(admin_client, "refresh_from_polar", in_polar)
    assert messages_of(response) == ["Refreshed 1 customer from Polar."]
    sub = StateSubscription.objects.get(customer=in_polar)
    assert (str(sub.product_id), sub.amount) == (PRODUCT, 2900)
    in_polar.refresh_from_db()
    assert in_polar.balance.balance == 700
    assert in_polar.granted_benefits.count() == 1


def test_refresh_button_on_the_customer_page(admin_client, in_polar):
    url = reverse("admin:polar_sync_customer_refresh", args=[in_polar.pk])
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, follow=True)
    assert response.redirect_chain[-1][0].endswith(f"/{in_polar.pk}/change/")
    assert messages_of(response) == ["Refreshed ada@example.com from Polar."]
    assert PRODUCT in response.text  # the subscription now shows on the page


def test_refresh_reports_polar_failures(admin_client, in_polar, live_polar):
    live_polar.faults.fail_rate = 1.0
    response = run_action(admin_client, "refresh_from_polar", in_polar)
    (message,) = messages_of(response)
    assert message.startswith("Refresh of ") and "failed" in message
    assert not StateSubscription.objects.exists()


def test_refresh_reports_an_unreachable_broker(admin_client, in_polar, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("polar_sync.admin.actions.tasks.refresh_customer.delay", down)
    response = run_action(admin_client, "refresh_from_polar", in_polar)
    assert messages_of(response) == [
        f"Could not queue refresh of {in_polar.pk}: the task broker is unreachable."
    ]


def test_refresh_with_a_broker_says_queued(admin_client, in_polar, monkeypatch, settings):
    sent = []
    monkeypatch.setattr("polar_sync.admin.actions.tasks.refresh_customer.delay", sent.append)
    monkeypatch.setattr("polar_sync.admin.actions.tasks_run_inline", lambda: False)
    response = run_action(admin_client, "refresh_from_polar", in_polar)
    assert sent == [str(in_polar.pk)]
    assert messages_of(response) == ["Queued a refresh of 1 customer from Polar."]


def test_refresh_refuses_huge_selections(admin_client, monkeypatch):
    monkeypatch.setattr("polar_sync.admin.actions.MAX_ROWS_PER_ACTION", 1)
    sent = []
    monkeypatch.setattr("polar_sync.admin.actions.tasks.refresh_customer.delay", sent.append)
    customers = [make_customer(), make_customer()]
    response = run_action(admin_client, "refresh_from_polar", *customers)
    assert sent == []
    assert "Select at most 1 customers" in messages_of(response)[0]


def test_sync_now_pulls_every_customer(admin_client, live_polar):
    for i in range(3):
        live_polar.store.add_customer(email=f"p{i}@example.com")
    assert admin_client.get(SYNC_NOW).status_code == 405
    response = admin_client.post(SYNC_NOW, follow=True)
    assert messages_of(response)[0].startswith("Pulled every customer from Polar")
    assert Customer.objects.count() == 3
    assert SyncRun.objects.get().status == "succeeded"


def test_sync_now_needs_the_change_permission(web, live_polar):
    live_polar.store.add_customer(email="p@example.com")
    web.force_login(make_user(staff=True, perms=("view_customer",)))
    assert web.post(SYNC_NOW).status_code == 403
    assert not Customer.objects.exists()


def test_delete_in_polar_asks_first_and_states_the_consequences(admin_client, in_polar, live_polar):
    customer_refresh(customer_id=in_polar.pk)  # so the page can count what will be cancelled
    response = run_action(admin_client, "delete_in_polar", in_polar)
    page = response.text
    assert response.templates[0].name.endswith("delete_in_polar_confirmation.html")
    assert "cancel every subscription" in page and "(1 active in total)" in page
    assert "revoke every benefit" in page and "(1 grant in total)" in page
    assert "ada@example.com" in page
    # Nothing happened yet.
    assert live_polar.store.get_customer(str(in_polar.pk))["deleted_at"] is None
    in_polar.refresh_from_db()
    assert in_polar.deleted_at is None


def test_delete_in_polar_once_confirmed(admin_client, in_polar, live_polar):
    customer_refresh(customer_id=in_polar.pk)
    response = run_action(admin_client, "delete_in_polar", in_polar, post="yes")
    assert messages_of(response)[0].startswith("Deleted 1 customer in Polar")
    assert live_polar.store.get_customer(str(in_polar.pk))["deleted_at"] is not None
    in_polar.refresh_from_db()
    assert in_polar.deleted_at is not None and in_polar.external_id is None
    assert not StateSubscription.objects.filter(customer=in_polar).exists()
    entry = LogEntry.objects.get(object_id=str(in_polar.pk))
    assert entry.get_change_message() == "Deleted in Polar."


def test_delete_in_polar_skips_customers_already_deleted(admin_client, in_polar):
    Customer.objects.filter(pk=in_polar.pk).update(deleted_at="2025-01-01T00:00:00Z")
    response = run_action(admin_client, "delete_in_polar", in_polar)
    assert messages_of(response) == ["The selected customers are already deleted in Polar."]


def test_delete_in_polar_needs_the_delete_permission(web, in_polar, live_polar):
    web.force_login(make_user(staff=True, perms=("view_customer", "change_customer")))
    response = run_action(web, "delete_in_polar", in_polar, post="yes")
    assert response.status_code == 200
    assert live_polar.store.get_customer(str(in_polar.pk))["deleted_at"] is None


def test_delete_service_when_polar_already_deleted_it(in_polar, live_polar):
    live_polar.store.delete_customer(str(in_polar.pk))
    assert customer_delete_in_polar(customer_id=in_polar.pk) is False
    in_polar.refresh_from_db()
    assert in_polar.deleted_at is not None


def test_delete_service_leaves_the_mirror_alone_when_polar_fails(in_polar, live_polar):
    live_polar.faults.fail_rate = 1.0
    with pytest.raises(PolarServerError):
        customer_delete_in_polar(customer_id=in_polar.pk)
    in_polar.refresh_from_db()
    assert in_polar.deleted_at is None and in_polar.external_id == "ada"


def test_delete_action_reports_polar_failures(admin_client, in_polar, live_polar):
    live_polar.faults.fail_rate = 1.0
    response = run_action(admin_client, "delete_in_polar", in_polar, post="yes")
    (message,) = messages_of(response)
    assert message.startswith("ada@example.com was not deleted:")
    in_polar.refresh_from_db()
    assert in_polar.deleted_at is None
