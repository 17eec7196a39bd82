"""End to end over real HTTP: the local Polar server posts webhooks to the Django app.

The app is served by pytest-django's ``live_server``; Celery runs eagerly (or, in the
no-broker test, has no broker at all), so a delivery is processed in-process (after
commit) before its 202 answer, and ``webhooks.flush()`` waiting for every answer means
the mirror is up to date.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from celery import current_app
from django.urls import reverse

from polar_sync.models import Customer, StateBenefitGrant, StateSubscription, WebhookEvent
from polar_sync.testing import LocalPolarServer
from tests.push_support import RecordingBroker
from tests.webhook_helpers import SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PolarFactory = Callable[..., LocalPolarServer]


@pytest.fixture
def polar_sending(live_server, settings) -> Iterator[PolarFactory]:
    """Start a local Polar server that sends webhooks to the live Django app."""
    servers: list[LocalPolarServer] = []

    def make(**options) -> LocalPolarServer:
        server = LocalPolarServer(
            webhook_url=live_server.url + reverse("polar_sync:webhooks"),
            webhook_secret=SECRET,
            **options,
        ).start()
        settings.POLAR_SYNC = {
            "ACCESS_TOKEN": server.token,
            "SERVER": server.url,
            "WEBHOOK_SECRET": SECRET,
            # The version the server sends its webhooks for (None: the 2025-10 era).
            "API_VERSION": None if server.api_version == "2025-10" else server.api_version,
        }
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def subscriptions(customer_id: str) -> dict[str, int]:
    rows = StateSubscription.objects.filter(customer_id=customer_id)
    return {str(sid): amount for sid, amount in rows.values_list("subscription_id", "amount")}


def test_e2e_subscription_started_on_polar_appears_via_webhook_without_pull(polar_sending):
    polar = polar_sending()
    customer = polar.store.add_customer(email="ada@example.com", external_id="42")
    product_id = str(uuid.uuid4())
    sub = polar.store.start_subscription(customer["id"], product_id=product_id, amount=2900)
    assert polar.webhooks.flush(timeout=20)

    mirrored = Customer.objects.get(pk=customer["id"])
    assert (mirrored.email, mirrored.external_id) == ("ada@example.com", "42")
    assert subscriptions(customer["id"]) == {sub["id"]: 2900}
    assert Customer.objects.with_active_subscription(product_id).get() == mirrored
    # Every delivery was accepted, and the mirror never called Polar's API: no pull.
    assert all(d.responses == [202] for d in polar.webhooks.deliveries)
    assert sum(polar.store.request_counts.values()) == 0
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_e2e_duplicated_and_reordered_deliveries_leave_polars_final_state(polar_sending):
    polar = polar_sending(webhook_duplicate=True, webhook_reorder=True)
    with polar.webhooks.held():
        customer = polar.store.add_customer(email="bob@example.com")
        first = polar.store.start_subscription(customer["id"], amount=900)
        second = polar.store.start_subscription(customer["id"], amount=2900)
        polar.store.cancel_subscription(customer["id"], first["id"])
        polar.store.update_customer(customer["id"], name="Bob")
    assert polar.webhooks.flush(timeout=20)

    # Newest first, each twice: the last state and the last name win, each event once.
    assert subscriptions(customer["id"]) == {second["id"]: 2900}
    assert Customer.objects.get(pk=customer["id"]).name == "Bob"
    deliveries = polar.webhooks.deliveries
    assert all(d.delivered == 2 for d in deliveries)
    events = WebhookEvent.objects.all()
    assert events.count() == len(deliveries) and all(e.attempts == 1 for e in events)
    # The older events, arriving after the newer ones, were recognised as such.
    assert events.filter(status="ignored").count() == 5
    assert sum(polar.store.request_counts.values()) == 0


def test_e2e_deletion_on_polar_marks_the_mirror_deleted(polar_sending):
    polar = polar_sending()
    customer = polar.store.add_customer(external_id="43")
    polar.store.start_subscription(customer["id"])
    polar.request("DELETE", f"/v1/customers/{customer['id']}")
    assert polar.webhooks.flush(timeout=20)
    mirrored = Customer.objects.get(pk=customer["id"])
    assert mirrored.is_deleted and mirrored.external_id is None
    assert subscriptions(customer["id"]) == {}


def test_e2e_a_wrong_secret_is_refused_and_nothing_is_stored(polar_sending, settings):
    polar = polar_sending()
    polar.webhooks.max_attempts = 2
    polar.webhooks.backoff = 0.01
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "WEBHOOK_SECRET": "polar_whs_another_one"}
    polar.store.add_customer()
    assert polar.webhooks.flush(timeout=20)
    assert {tuple(d.responses) for d in polar.webhooks.deliveries} == {(401, 401)}
    assert WebhookEvent.objects.count() == 0 and Customer.objects.count() == 0


def granted(customer_id: str) -> set[str]:
    rows = StateBenefitGrant.objects.filter(customer_id=customer_id)
    return {str(grant_id) for grant_id in rows.values_list("grant_id", flat=True)}


def within_seconds(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_e2e_without_a_broker_a_revoked_benefit_is_revoked_locally_within_seconds(
    polar_sending, monkeypatch
):
    """A project that configured no Celery broker (and no eager mode): no replay needed."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setitem(current_app.conf, "broker_url", None)
    monkeypatch.setitem(current_app.conf, "broker_write_url", None)
    broker = RecordingBroker()
    monkeypatch.setattr(current_app, "send_task", broker)
    polar = polar_sending()
    customer = polar.store.add_customer(email="cy@example.com", external_id="44")
    grant = polar.store.grant_benefit(customer["id"])
    assert polar.webhooks.flush(timeout=20)
    assert within_seconds(lambda: granted(customer["id"]) == {grant["id"]})

    polar.store.revoke_benefit(customer["id"], grant["id"])
    assert polar.webhooks.flush(timeout=20)
    assert within_seconds(lambda: granted(customer["id"]) == set())
    assert broker.sent == []  # nothing went to a broker, nobody ran a replay or a sweep
    last = WebhookEvent.objects.latest("received_at")
    assert (last.event_type, last.status) == ("customer.state_changed", "processed")
    assert not WebhookEvent.objects.filter(status__in=["received", "retrying"]).exists()


@pytest.mark.parametrize("api_version", ["2025-10", "2026-04", "2026-10"])
def test_e2e_customer_webhooks_of_each_version_are_applied(polar_sending, api_version):
    """customer.* and customer.state_changed at each version: a 2026 team customer
    (no email) with a seat-based subscription; the event rows keep ``api_version``."""
    polar = polar_sending(api_version=api_version)
    dated = api_version != "2025-10"
    if dated:
        team = polar.store.add_customer(name="Acme", type="team", locale="fr")
        sub = polar.store.start_subscription(team["id"], amount=9900)
        polar.store.assign_seat(team["id"], sub["id"], email="a@acme.test")
    else:
        team = polar.store.add_customer(email="ada@example.com")
        polar.store.start_subscription(team["id"], amount=9900)
    assert polar.webhooks.flush(timeout=20)

    mirrored = Customer.objects.get(pk=team["id"])
    sub_row = StateSubscription.objects.get(customer=mirrored)
    if dated:
        assert (mirrored.type, mirrored.email, mirrored.locale) == ("team", None, "fr")
        assert sub_row.seats == 1
    else:
        assert (mirrored.type, mirrored.email) == (None, "ada@example.com")
        assert sub_row.seats is None
    events = WebhookEvent.objects.filter(event_type__startswith="customer.")
    assert set(events.values_list("api_version", flat=True)) == {api_version if dated else ""}
    assert set(events.values_list("status", flat=True)) == {"processed"}
