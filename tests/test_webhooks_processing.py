"""Processing stored webhook events: idempotent, order-safe, failures recorded, replay."""

from __future__ import annotations

import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from polar_sync import services
from polar_sync.models import Customer, CustomerState, StateSubscription, WebhookEvent
from tests.factories import make_customer, make_state
from tests.webhook_helpers import customer_data, deliver, state_payload

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]
Status = WebhookEvent.Status


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    """Deliver one signed event through the endpoint, running on-commit work (the task)."""
    web = Client()

    def send(event_type: str, data: dict, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(web, event_type, data, **kwargs)
        assert response.status_code == 202, response.content
        return response

    return send


@pytest.fixture
def cid() -> str:
    return str(uuid.uuid4())


def event(webhook_id: str) -> WebhookEvent:
    return WebhookEvent.objects.get(webhook_id=webhook_id)


def subscription_ids(customer_id: str) -> set[str]:
    rows = StateSubscription.objects.filter(customer_id=customer_id)
    return {str(pk) for pk in rows.values_list("subscription_id", flat=True)}


# -- customer events ----------------------------------------------------------------------


def test_customer_created_upserts_the_mirror(send, cid):
    send("customer.created", customer_data(cid, name="Ada"), webhook_id="msg_1")
    customer = Customer.objects.get(pk=cid)
    assert customer.name == "Ada" and customer.external_id == "usr_1337"
    assert event("msg_1").status == Status.PROCESSED
    assert event("msg_1").attempts == 1 and event("msg_1").processed_at is not None


def test_customer_updated_with_a_newer_modified_at_wins(send, cid):
    send("customer.created", customer_data(cid, name="Old", modified_at="2025-05-01T00:00:00Z"))
    send("customer.updated", customer_data(cid, name="New", modified_at="2025-05-02T00:00:00Z"))
    assert Customer.objects.get(pk=cid).name == "New"


def test_reordered_customer_updates_leave_the_newest_data(send, cid):
    newer = customer_data(cid, name="Newest", modified_at="2025-05-03T00:00:00Z")
    older = customer_data(cid, name="Older", modified_at="2025-05-02T00:00:00Z")
    send("customer.updated", newer, webhook_id="msg_new")
    send("customer.updated", older, webhook_id="msg_old")
    assert Customer.objects.get(pk=cid).name == "Newest"
    assert event("msg_old").status == Status.IGNORED
    assert "older than the mirror" in event("msg_old").error


def test_a_late_customer_created_does_not_roll_back_an_update(send, cid):
    send("customer.updated", customer_data(cid, name="Renamed", modified_at="2025-05-03T00:00:00Z"))
    send("customer.created", customer_data(cid, name="Original", modified_at=None))
    assert Customer.objects.get(pk=cid).name == "Renamed"


def test_customer_deleted_marks_deleted_and_clears_the_state(send):
    customer = make_customer()
    make_state(customer)
    assert customer.active_subscriptions.exists()
    data = customer_data(
        str(customer.pk),
        external_id=None,
        modified_at="2025-06-01T00:00:00Z",
        deleted_at="2025-06-01T00:00:00Z",
    )
    send("customer.deleted", data, webhook_id="msg_del")
    customer.refresh_from_db()
    assert customer.is_deleted and customer.external_id is None
    assert not customer.active_subscriptions.exists()
    assert not customer.granted_benefits.exists() and not customer.active_meters.exists()
    assert event("msg_del").status == Status.PROCESSED


def test_customer_deleted_for_an_unknown_customer_is_mirrored_as_deleted(send, cid):
    data = customer_data(cid, deleted_at="2025-06-01T00:00:00Z")
    send("customer.deleted", data)
    assert Customer.objects.get(pk=cid).is_deleted


def test_a_late_update_does_not_revive_a_deleted_customer(send, cid):
    deleted = customer_data(
        cid, modified_at="2025-06-01T00:00:00Z", deleted_at="2025-06-01T00:00:00Z"
    )
    send("customer.deleted", deleted)
    send("customer.updated", customer_data(cid, modified_at="2025-05-01T00:00:00Z"), webhook_id="u")
    assert Customer.objects.get(pk=cid).is_deleted
    assert event("u").status == Status.IGNORED


# -- state events -------------------------------------------------------------------------


def test_state_changed_replaces_the_state_without_any_api_call(send, cid):
    # tests.settings points SERVER at a port where nothing listens: a request would fail.
    send("customer.state_changed", state_payload(cid), webhook_id="msg_state")
    customer = Customer.objects.get(pk=cid)
    assert customer.active_subscriptions.count() == 2
    assert customer.granted_benefits.exists() and customer.active_meters.exists()
    assert CustomerState.objects.filter(customer=customer).exists()
    assert event("msg_state").status == Status.PROCESSED


def test_reordered_state_changes_leave_the_newest_state(send, cid):
    full = state_payload(cid)
    emptied = state_payload(cid, active_subscriptions=[], granted_benefits=[], active_meters=[])
    # The newer event (everything canceled) arrives first, the older one after it.
    send("customer.state_changed", emptied, timestamp="2025-06-02T00:00:00.000002Z", webhook_id="n")
    send("customer.state_changed", full, timestamp="2025-06-02T00:00:00.000001Z", webhook_id="o")
    assert subscription_ids(cid) == set()
    assert event("n").status == Status.PROCESSED
    assert event("o").status == Status.IGNORED and "newer state" in event("o").error


def test_in_order_state_changes_apply_each(send, cid):
    full = state_payload(cid)
    emptied = state_payload(cid, active_subscriptions=[], granted_benefits=[], active_meters=[])
    send("customer.state_changed", emptied, timestamp="2025-06-02T00:00:01Z")
    send("customer.state_changed", full, timestamp="2025-06-02T00:00:02Z")
    assert len(subscription_ids(cid)) == 2


def test_a_late_state_does_not_refill_a_deleted_customer(send, cid):
    deleted = customer_data(
        cid, modified_at="2025-06-01T00:00:00Z", deleted_at="2025-06-01T00:00:00Z"
    )
    send("customer.deleted", deleted)
    old_state = state_payload(cid, modified_at="2025-05-01T00:00:00Z")
    send("customer.state_changed", old_state, webhook_id="late")
    assert subscription_ids(cid) == set()
    assert event("late").status == Status.IGNORED


# -- duplicates, unknown types, failures ---------------------------------------------------


def test_a_redelivery_is_acknowledged_and_processed_once(send, cid, monkeypatch):
    calls = []
    real_apply = services.webhook_handlers.customer_state_apply

    def counting_apply(**kwargs):
        calls.append(kwargs["payload"]["id"])
        return real_apply(**kwargs)

    monkeypatch.setattr("polar_sync.services.webhook_handlers.customer_state_apply", counting_apply)
    first = send("customer.state_changed", state_payload(cid), webhook_id="msg_dup")
    again = send("customer.state_changed", state_payload(cid), webhook_id="msg_dup")
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert calls == [cid]
    assert WebhookEvent.objects.count() == 1 and event("msg_dup").attempts == 1


def test_a_duplicate_task_does_not_process_twice(send, cid):
    send("customer.created", customer_data(cid), webhook_id="msg_once")
    pk = event("msg_once").pk
    services.webhook_event_process(event_id=pk)  # e.g. the broker delivered the task again
    assert event("msg_once").attempts == 1


def test_unknown_event_types_are_stored_and_acknowledged(send, monkeypatch):
    dispatched = []
    monkeypatch.setattr(
        "polar_sync.services.webhooks.webhook_event_dispatch", lambda **kw: dispatched.append(kw)
    )
    send("order.paid", {"id": str(uuid.uuid4()), "amount": 100}, webhook_id="msg_order")
    stored = event("msg_order")
    assert stored.status == Status.IGNORED and stored.payload["data"]["amount"] == 100
    assert dispatched == []  # nothing to process


def test_a_failure_is_recorded_on_the_event_and_the_replay_reprocesses_it(send, cid, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("polar_sync.services.webhook_handlers.customer_state_apply", broken)
    send("customer.state_changed", state_payload(cid), webhook_id="msg_fail")
    failed = event("msg_fail")
    assert failed.status == Status.FAILED and "RuntimeError: database on fire" in failed.error
    assert not Customer.objects.filter(pk=cid).exists()

    monkeypatch.undo()
    out = StringIO()
    call_command("polar_webhooks", "--replay", "--failed", stdout=out)
    assert "replayed 1 event(s): 1 processed" in out.getvalue()
    replayed = event("msg_fail")
    assert replayed.status == Status.PROCESSED and replayed.error == "" and replayed.attempts == 2
    assert len(subscription_ids(cid)) == 2


def test_a_malformed_payload_fails_with_a_clear_error(send, cid):
    bad = state_payload(cid)
    del bad["active_subscriptions"][0]["product_id"]
    send("customer.state_changed", bad, webhook_id="msg_bad")
    failed = event("msg_bad")
    assert failed.status == Status.FAILED and "product_id" in failed.error
    assert not StateSubscription.objects.filter(customer_id=cid).exists()  # nothing half-written


def test_replay_fails_loudly_when_events_fail_again(send, cid, monkeypatch):
    bad = state_payload(cid)
    del bad["active_subscriptions"][0]["product_id"]
    send("customer.state_changed", bad, webhook_id="msg_bad")
    err = StringIO()
    with pytest.raises(CommandError, match="1 event"):
        call_command("polar_webhooks", "--replay", "--failed", stdout=StringIO(), stderr=err)
    assert "msg_bad" in err.getvalue() and "product_id" in err.getvalue()


def test_replay_in_timestamp_order_leaves_the_newest_state(send, cid):
    full = state_payload(cid)
    emptied = state_payload(cid, active_subscriptions=[], granted_benefits=[], active_meters=[])
    send("customer.state_changed", full, timestamp="2025-06-02T00:00:01Z")
    send("customer.state_changed", emptied, timestamp="2025-06-02T00:00:02Z")
    call_command("polar_webhooks", "--replay", stdout=StringIO())
    assert subscription_ids(cid) == set()


def test_replay_since_selects_by_reception(send, cid):
    send("customer.created", customer_data(cid), webhook_id="old")
    WebhookEvent.objects.filter(webhook_id="old").update(received_at="2020-01-01T00:00:00Z")
    send("customer.created", customer_data(str(uuid.uuid4())), webhook_id="new")
    out = StringIO()
    call_command("polar_webhooks", "--replay", "--since", "2024-01-01", stdout=out)
    assert "replayed 1 event(s)" in out.getvalue()
    assert event("old").attempts == 1 and event("new").attempts == 2


def test_bad_since_is_a_clear_error():
    with pytest.raises(CommandError, match="--since: must be an ISO-8601"):
        call_command("polar_webhooks", "--replay", "--since", "last tuesday")


def test_without_replay_the_command_counts_by_status(send, cid):
    send("customer.created", customer_data(cid))
    send("order.paid", {"id": cid})
    out = StringIO()
    call_command("polar_webhooks", stdout=out)
    lines = dict(line.split() for line in out.getvalue().splitlines())
    assert lines == {
        "received": "0",
        "retrying": "0",
        "processed": "1",
        "failed": "0",
        "ignored": "1",
    }


def test_replay_of_chosen_events_only(send, cid):
    send("customer.created", customer_data(cid), webhook_id="a")
    send("customer.created", customer_data(str(uuid.uuid4())), webhook_id="b")
    outcomes = services.webhook_events_replay(ids=[event("b").pk])
    assert outcomes == {"processed": 1}
    assert event("a").attempts == 1 and event("b").attempts == 2


def test_one_customers_events_are_serialized_across_workers_on_postgresql(cid):
    from django.db import connection, transaction

    from polar_sync.services.webhook_handlers import lock_customer

    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite has a single writer")
    with transaction.atomic():
        lock_customer(uuid.UUID(cid))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                "AND pid = pg_backend_pid()",
                [0x504F4C52],
            )
            assert cursor.fetchone()[0] == 1
