"""Pushes and webhook deliveries in the admin: the outbox, retry, push, replay, status."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from polar_sync.models import Customer, PushedPayload, PushOutbox, WebhookEvent
from polar_sync.services import customer_upsert
from tests.conftest import load_fixture
from tests.mirror_helpers import make_user

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:polar_sync_customer_changelist")
OUTBOX = reverse("admin:polar_sync_pushoutbox_changelist")
WEBHOOKS = reverse("admin:polar_sync_webhookevent_changelist")
STATUS = reverse("admin:polar_sync_syncrun_status")


def outbox_row(external_id: str, **fields) -> PushOutbox:
    values = {
        "action": PushOutbox.Action.UPSERT,
        "payload": {"email": f"{external_id}@example.com", "name": None},
        **fields,
    }
    return PushOutbox.objects.create(external_id=external_id, **values)


def webhook(webhook_id: str, **fields) -> WebhookEvent:
    payload = {
        "type": "customer.updated",
        "timestamp": "2025-04-02T11:30:00Z",
        "data": load_fixture("customer"),
    }
    values = {"event_type": "customer.updated", "payload": payload, **fields}
    return WebhookEvent.objects.create(webhook_id=webhook_id, **values)


def post_action(client: Client, url: str, action: str, pks: list) -> list[str]:
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"}
    response = client.post(url, data, follow=True)
    return [str(m) for m in response.context["messages"]]


def test_status_page_counts_pushes_and_failed_webhooks_with_links(admin_client):
    outbox_row("a")
    outbox_row("b")
    outbox_row("c", status=PushOutbox.Status.FAILED, last_error="422: email taken")
    webhook("w1", status=WebhookEvent.Status.FAILED, error="boom")
    webhook("w2", status=WebhookEvent.Status.PROCESSED)
    # Users saved by the test (the admin's own account) may wait in the outbox too.
    pending = PushOutbox.objects.filter(status=PushOutbox.Status.PENDING).count()
    assert pending >= 2
    page = admin_client.get(STATUS).text
    pushes = re.search(r'<tr id="status-pushes">(.*?)</tr>', page, re.S).group(1)
    assert f"{pending} pending, 1 failed" in pushes
    assert f"{OUTBOX}?status__exact=failed" in pushes
    hooks = re.search(r'<tr id="status-webhooks">(.*?)</tr>', page, re.S).group(1)
    assert "<td>1</td>" in hooks and f"{WEBHOOKS}?status__exact=failed" in hooks
    failed_rows = admin_client.get(OUTBOX, {"status__exact": "failed"}).text
    assert "422: email taken" in failed_rows and ">a<" not in failed_rows


def test_outbox_is_read_only(admin_client):
    row = outbox_row("keep", last_error="first\nsecond")
    url = reverse("admin:polar_sync_pushoutbox_change", args=[row.pk])
    page = admin_client.get(url).text
    assert "keep@example.com" in page and "<pre>first\nsecond</pre>" in page
    assert admin_client.post(url, {"status": "failed"}).status_code == 403
    assert admin_client.get(reverse("admin:polar_sync_pushoutbox_add")).status_code == 403
    row.refresh_from_db()
    assert row.status == PushOutbox.Status.PENDING


def test_retry_pushes_a_failed_row_to_polar(admin_client, live_polar):
    row = outbox_row("u-1", status=PushOutbox.Status.FAILED, last_error="was down", attempts=3)
    messages = post_action(admin_client, OUTBOX, "retry_now", [row.pk])
    assert messages == ["Pushed 1 change to Polar."]
    created = live_polar.store.get_customer_by_external_id("u-1")
    assert created is not None and created["email"] == "u-1@example.com"
    assert not PushOutbox.objects.filter(pk=row.pk).exists()


def test_retry_of_a_payload_polar_has_says_so_and_sends_nothing(admin_client, live_polar):
    payload = {"email": "u-3@example.com", "name": None}
    PushedPayload.objects.create(external_id="u-3", payload=payload)
    row = outbox_row("u-3", payload=payload)
    messages = post_action(admin_client, OUTBOX, "retry_now", [row.pk])
    assert messages == ["1 change already in Polar as last pushed: removed without a request."]
    assert live_polar.store.get_customer_by_external_id("u-3") is None  # no request made
    assert not PushOutbox.objects.filter(pk=row.pk).exists()


def test_retry_reports_that_polar_is_unavailable(admin_client, live_polar):
    row = outbox_row("u-2", status=PushOutbox.Status.FAILED)
    live_polar.faults.fail_rate = 1.0
    messages = post_action(admin_client, OUTBOX, "retry_now", [row.pk])
    assert any("postponed" in m for m in messages), messages
    row.refresh_from_db()
    assert row.status == PushOutbox.Status.PENDING  # retried later, with a backoff


def test_retry_needs_the_change_permission(live_polar):
    row = outbox_row("u-3", status=PushOutbox.Status.FAILED)
    web = Client()
    web.force_login(make_user(staff=True, perms=("view_pushoutbox",)))
    assert 'value="retry_now"' not in web.get(OUTBOX).text
    post_action(web, OUTBOX, "retry_now", [row.pk])
    assert live_polar.store.get_customer_by_external_id("u-3") is None


def test_push_action_sends_the_linked_users_current_data(admin_client, live_polar):
    user = make_user()
    in_polar = live_polar.store.add_customer(
        email=user.email, name="Old Name", external_id=str(user.pk)
    )
    customer = customer_upsert(payload=in_polar)
    assert customer.user_id == user.pk
    user.first_name, user.last_name = "Ada", "Lovelace"
    user.save()
    messages = post_action(admin_client, CUSTOMERS, "push_to_polar", [customer.pk])
    assert messages == ["Pushed 1 change to Polar."]
    assert live_polar.store.get_customer(in_polar["id"])["name"] == "Ada Lovelace"


def test_push_action_leaves_customers_without_a_user_alone(admin_client, live_polar):
    in_polar = live_polar.store.add_customer(email="guest@example.com", external_id="no-user")
    customer = customer_upsert(payload=in_polar)
    live_polar.store.reset_requests()
    messages = post_action(admin_client, CUSTOMERS, "push_to_polar", [customer.pk])
    assert messages == ["1 customer has no local user: nothing to push for them."]
    assert live_polar.store.get_customer(in_polar["id"])["deleted_at"] is None
    assert sum(live_polar.store.request_counts.values()) == 0


def test_webhook_deliveries_are_listed_and_replayed(admin_client):
    failed = webhook("w-failed", status=WebhookEvent.Status.FAILED, error="OperationalError: x")
    webhook("w-done", status=WebhookEvent.Status.PROCESSED, error="")
    listing = admin_client.get(WEBHOOKS, {"status__exact": "failed"}).text
    assert "OperationalError: x" in listing and listing.count("customer.updated") >= 1
    assert f"/{failed.pk}/change/" in listing
    detail_url = reverse("admin:polar_sync_webhookevent_change", args=[failed.pk])
    assert admin_client.post(detail_url, {"status": "processed"}).status_code == 403
    messages = post_action(admin_client, WEBHOOKS, "replay", [failed.pk])
    assert messages == ["Replayed 1 deliveries: 1 processed."]
    failed.refresh_from_db()
    assert failed.status == WebhookEvent.Status.PROCESSED
    assert Customer.objects.filter(email="ada@example.com").exists()


def test_replay_needs_the_change_permission():
    event = webhook("w-2", status=WebhookEvent.Status.FAILED, received_at=timezone.now())
    web = Client()
    web.force_login(make_user(staff=True, perms=("view_webhookevent",)))
    assert 'value="replay"' not in web.get(WEBHOOKS).text
    post_action(web, WEBHOOKS, "replay", [event.pk])
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.FAILED
