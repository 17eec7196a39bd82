"""Signals for the host project: sent after commit, once per real change, whatever the path."""

from __future__ import annotations

import logging
import uuid
from collections import Counter

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from polar_sync import signals
from polar_sync.models import Customer, StateBenefitGrant, StateSubscription
from polar_sync.services import (
    customer_refresh,
    customer_state_apply,
    customer_upsert,
    customers_pull,
    customers_upsert,
    states_refresh,
)
from tests.conftest import load_fixture
from tests.push_support import make_user
from tests.webhook_helpers import customer_data, deliver, state_payload

NAMES = list(signals.__all__)
SUB_ID = "e5149aae-e521-42b9-b24c-abb3d71eea2e"  # the first subscription of state.json


class Heard:
    """Every signal sent, as (name, kwargs without 'signal'), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def receiver(self, name: str):
        def receive(sender, **kwargs):
            kwargs.pop("signal")
            self.calls.append((name, {"sender": sender, **kwargs}))

        return receive

    def names(self) -> Counter:
        return Counter(name for name, _ in self.calls)

    def take(self) -> Counter:
        """The names heard since the last take."""
        names = self.names()
        self.calls = []
        return names


@pytest.fixture
def heard():
    recorder = Heard()
    receivers = [(getattr(signals, n), recorder.receiver(n)) for n in NAMES]
    for signal, receive in receivers:
        signal.connect(receive, weak=False)
    yield recorder
    for signal, receive in receivers:
        signal.disconnect(receive)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a callable and then its on-commit work, as a real commit would."""

    def run(call, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


# -- the pull -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pull_sends_each_creation_update_and_deletion_once(live_polar, heard, committed):
    live_polar.store.seed(120, seed=4)
    committed(customers_pull)
    assert heard.take() == {"customer_created": 120}
    committed(customers_pull)  # the same customers again
    assert heard.take() == Counter()
    changed, victim = live_polar.store.customers()[3:5]
    live_polar.store.update_customer(changed["id"], name="Renamed")
    live_polar.store.delete_customer(victim["id"])
    committed(customers_pull)
    calls = heard.calls
    assert heard.take() == {"customer_updated": 1, "customer_deleted": 1}
    updated = next(kw for name, kw in calls if name == "customer_updated")
    assert updated["customer_id"] == uuid.UUID(changed["id"]) and "raw" in updated["changed"]
    assert updated["sender"] is Customer
    deleted = next(kw for name, kw in calls if name == "customer_deleted")
    assert deleted["customer_id"] == uuid.UUID(victim["id"])
    committed(customers_pull)  # the same change found again
    assert heard.take() == Counter()


def _page(n: int) -> list[dict]:
    base = load_fixture("customer")
    return [dict(base, id=str(uuid.uuid4()), external_id=f"sig{n}-{i}") for i in range(n)]


@pytest.mark.django_db
def test_listening_costs_the_pull_no_query(heard, committed):
    counts = {}
    for n in (10, 40):
        payloads = _page(n)
        with CaptureQueriesContext(connection) as created:
            committed(customers_upsert, payloads=payloads)
        for p in payloads:
            p["name"] = "changed"
        with CaptureQueriesContext(connection) as updated:
            committed(customers_upsert, payloads=payloads)
        counts[n] = (len(created), len(updated))
    assert heard.take() == {"customer_created": 50, "customer_updated": 50}
    assert counts[10] == counts[40]
    # The page's budget (SQLite: one more, its 999 parameters a statement), + the test
    # transaction's SAVEPOINT/RELEASE: what the pull costs without listeners.
    assert max(counts[40]) <= (5 if connection.vendor == "sqlite" else 4) + 2


@pytest.mark.django_db
def test_nothing_is_sent_for_a_rolled_back_write(heard, committed):
    pk = str(uuid.uuid4())

    def rolled_back():
        with pytest.raises(RuntimeError), transaction.atomic():
            customer_state_apply(payload=state_payload(pk))
            raise RuntimeError("the caller's transaction fails")

    committed(rolled_back)
    assert heard.take() == Counter()
    assert not Customer.objects.filter(pk=pk).exists()
    committed(customer_state_apply, payload=state_payload(pk))  # the same, committed
    assert heard.take()["subscription_started"] == 2


@pytest.mark.django_db
def test_a_receiver_error_is_logged_and_the_others_still_hear(heard, committed, caplog):
    def broken(sender, **kwargs):
        raise ValueError("mail server down")

    signals.customer_created.connect(broken, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="polar_sync.signals"):
            committed(customer_upsert, payload=customer_data(str(uuid.uuid4())))
    finally:
        signals.customer_created.disconnect(broken)
    assert heard.take() == {"customer_created": 1}
    assert "mail server down" in caplog.text


# -- webhooks -------------------------------------------------------------------------------


@pytest.fixture
def send(django_capture_on_commit_callbacks, webhook_secret):
    web = Client()

    def send(event_type: str, data: dict, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(web, event_type, data, **kwargs)
        assert response.status_code == 202, response.content
        return response

    return send


@pytest.mark.django_db
def test_customer_webhooks_send_once_under_redelivery_and_reorder(heard, send):
    cid = str(uuid.uuid4())
    created = customer_data(cid, name="Ada", modified_at="2025-05-01T00:00:00Z")
    send("customer.created", created, webhook_id="msg_c")
    send("customer.created", created, webhook_id="msg_c")  # redelivered
    assert heard.take() == {"customer_created": 1}
    newer = customer_data(cid, name="Ada L.", modified_at="2025-05-03T00:00:00Z")
    older = customer_data(cid, name="Ada B.", modified_at="2025-05-02T00:00:00Z")
    send("customer.updated", newer, webhook_id="msg_new")
    send("customer.updated", older, webhook_id="msg_old")  # arrives late: changes nothing
    send("customer.updated", newer, webhook_id="msg_new_again")  # the same change, new id
    assert heard.take() == {"customer_updated": 1}
    gone = customer_data(cid, modified_at="2025-05-04T00:00:00Z", deleted_at="2025-05-04T00:00:00Z")
    send("customer.deleted", gone, webhook_id="msg_d")
    send("customer.deleted", gone, webhook_id="msg_d2")
    send("customer.updated", newer, webhook_id="msg_late")
    assert heard.take() == {"customer_deleted": 1}


@pytest.mark.django_db
def test_state_webhooks_diff_subscriptions_and_grants_exactly_once(heard, send):
    cid = str(uuid.uuid4())
    first = state_payload(cid)
    send("customer.state_changed", first, webhook_id="s1", timestamp="2025-05-01T00:00:00Z")
    calls = heard.calls
    grants = len(first["granted_benefits"])
    assert heard.take() == {
        "customer_created": 1,
        "subscription_started": 2,
        "benefit_granted": grants,
        "customer_state_changed": 1,
    }
    started = [kw for name, kw in calls if name == "subscription_started"]
    assert all(isinstance(kw["subscription"], StateSubscription) for kw in started)
    assert {str(kw["subscription"].subscription_id) for kw in started} >= {SUB_ID}
    whole = next(kw for name, kw in calls if name == "customer_state_changed")
    assert len(whole["subscriptions_started"]) == 2 and whole["customer_id"] == uuid.UUID(cid)

    send("customer.state_changed", first, webhook_id="s1", timestamp="2025-05-01T00:00:00Z")
    send("customer.state_changed", first, webhook_id="s1b", timestamp="2025-05-01T00:00:01Z")
    assert heard.take() == Counter()  # redelivered; then the same state again

    second = state_payload(cid)
    second["active_subscriptions"] = second["active_subscriptions"][1:]
    second["granted_benefits"] = []
    send("customer.state_changed", second, webhook_id="s2", timestamp="2025-05-02T00:00:00Z")
    calls = heard.calls
    assert heard.take() == {
        "subscription_ended": 1,
        "benefit_revoked": grants,
        "customer_state_changed": 1,
    }
    ended = next(kw for name, kw in calls if name == "subscription_ended")
    assert str(ended["subscription"].subscription_id) == SUB_ID
    revoked = next(kw for name, kw in calls if name == "benefit_revoked")
    assert isinstance(revoked["grant"], StateBenefitGrant)
    assert revoked["sender"] is StateBenefitGrant

    # The first state, delivered again later: older than the one applied, so nothing.
    send("customer.state_changed", first, webhook_id="s1c", timestamp="2025-05-01T12:00:00Z")
    assert heard.take() == Counter()
    assert StateSubscription.objects.filter(customer_id=cid).count() == 1


@pytest.mark.django_db
def test_a_deleted_customer_ends_its_subscriptions_once(heard, send):
    cid = str(uuid.uuid4())
    send("customer.state_changed", state_payload(cid), timestamp="2025-05-01T00:00:00Z")
    heard.take()
    gone = customer_data(cid, modified_at="2025-05-04T00:00:00Z", deleted_at="2025-05-04T00:00:00Z")
    send("customer.deleted", gone, webhook_id="del")
    send("customer.deleted", gone, webhook_id="del")
    grants = len(state_payload(cid)["granted_benefits"])
    assert heard.take() == {
        "customer_deleted": 1,
        "subscription_ended": 2,
        "benefit_revoked": grants,
        "customer_state_changed": 1,
    }


# -- the state refresh ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refresh_sends_what_changed_on_polar_and_nothing_when_nothing_did(
    live_polar, heard, committed
):
    store = live_polar.store
    customer = store.add_customer(email="r@example.com", external_id="r1")
    committed(customers_pull)
    committed(states_refresh)
    assert heard.take() == {"customer_created": 1}  # an empty state is no change

    def refresh():
        committed(customer_refresh, customer_id=customer["id"])

    sub = store.start_subscription(customer["id"], amount=900)
    grant = store.grant_benefit(customer["id"], benefit_type="custom")
    refresh()
    assert heard.take() == {
        "subscription_started": 1,
        "benefit_granted": 1,
        "customer_state_changed": 1,
    }
    refresh()  # nothing new on Polar
    assert heard.take() == Counter()
    store.cancel_subscription(customer["id"], sub["id"])
    store.revoke_benefit(customer["id"], grant["id"])
    refresh()
    calls = heard.calls
    assert heard.take() == {
        "subscription_ended": 1,
        "benefit_revoked": 1,
        "customer_state_changed": 1,
    }
    ended = next(kw for name, kw in calls if name == "subscription_ended")
    assert str(ended["subscription"].subscription_id) == sub["id"]


# -- the push's answer ---------------------------------------------------------------------


@pytest.mark.e2e
def test_a_pushed_user_sends_created_then_updated_once(live_polar, transactional_db, heard):
    user = make_user(email="ada@example.com", first_name="Ada")
    assert heard.take() == {"customer_created": 1}
    user.first_name = "Ada B."
    user.save()
    assert heard.take() == {"customer_updated": 1}
    user.save()  # nothing Polar cares about changed: no push, nothing mirrored
    assert heard.take() == Counter()
    user.delete()
    assert heard.take() == {"customer_deleted": 1}
