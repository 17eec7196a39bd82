"""States and balances: refreshes against the local Polar server, and the shared budget."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from polar_sync.models import (
    Customer,
    CustomerBalance,
    CustomerState,
    RequestBudget,
    StateBenefitGrant,
    StateSubscription,
    SyncRun,
)
from polar_sync.services import (
    balances_refresh,
    customer_refresh,
    customer_state_apply,
    customers_pull,
    customers_upsert,
    states_refresh,
)
from polar_sync.services.budget import Budget, budget_pause, budget_take, budget_try_take
from tests.conftest import BASE_URL, load_fixture, polar_in_use

pytestmark = pytest.mark.django_db


@pytest.fixture
def mirrored(request):
    """Five customers on the server, each with a subscription and a benefit, pulled (on
    the test's server: ``live_polar``, ``live_polar_2025`` or ``live_polar_any``)."""
    store = polar_in_use(request).store
    ids = []
    for i in range(5):
        c = store.add_customer(email=f"s{i}@example.com", external_id=f"s{i}")
        store.start_subscription(
            c["id"], amount=1000 + i, product_id="d8dd2de1-21b7-4a41-8bc3-ce909c0cfe23"
        )
        store.grant_benefit(c["id"], benefit_type="custom")
        store.set_balance(c["id"], 100 * i)
        ids.append(c["id"])
    customers_pull()
    return ids


def test_states_refresh_mirrors_subscriptions_grants_and_meters(live_polar_any, mirrored):
    """End to end at each API_VERSION, against a server of that version (None: 2025-10)."""
    api_version = live_polar_any.api_version
    team = (
        live_polar_any.store.add_customer(name="Acme", type="team")
        if api_version != ("2025-10")
        else None
    )
    if team:
        live_polar_any.store.add_member(team["id"], external_id="u1", role="owner")
        live_polar_any.store.add_member(team["id"], external_id="u2")
        sub = live_polar_any.store.start_subscription(team["id"], amount=9900)
        for email in ("a@acme.test", "b@acme.test"):
            live_polar_any.store.assign_seat(team["id"], sub["id"], email=email)
        customers_pull()
    run = states_refresh()
    n = 6 if team else 5
    assert (run.status, run.updated, run.requests) == ("succeeded", n, n)
    assert run.api_version == api_version
    assert StateSubscription.objects.count() == n
    assert StateBenefitGrant.objects.count() == 5
    sub = StateSubscription.objects.get(customer_id=mirrored[3])
    assert sub.amount == 1003 and sub.status == "active"
    assert (sub.seats, sub.units) == (None, None)
    assert CustomerState.objects.count() == n
    if team:
        customer = Customer.objects.get(pk=team["id"])
        assert (customer.type, customer.email) == ("team", None)
        assert StateSubscription.objects.get(customer_id=team["id"]).seats == 2
        assert Customer.objects.get(pk=mirrored[0]).type == "individual"
    else:
        assert set(Customer.objects.values_list("type", flat=True)) == {None}


def test_fresh_states_are_not_fetched_again_and_stale_ones_oldest_first(
    live_polar, mirrored, settings
):
    states_refresh()
    assert states_refresh().requests == 0  # all fresh
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "STATE_REFRESH_INTERVAL": 0}
    CustomerState.objects.filter(customer_id=mirrored[2]).update(synced_at="2000-01-01T00:00Z")
    live_polar.store.reset_requests()
    states_refresh(max_requests=1)
    assert [r.path for r in live_polar.store.requests] == [f"/v1/customers/{mirrored[2]}/state"]


def test_never_synced_customers_come_first(live_polar, mirrored):
    states_refresh(max_requests=3)
    first = {str(pk) for pk in CustomerState.objects.values_list("customer_id", flat=True)}
    live_polar.store.reset_requests()
    states_refresh()
    fetched = {r.path.split("/")[3] for r in live_polar.store.requests}
    assert len(first) == 3 and fetched == set(mirrored) - first


def test_a_cancelled_subscription_leaves_the_mirror(live_polar, mirrored, settings):
    states_refresh()
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "STATE_REFRESH_INTERVAL": 0}
    sub_id = live_polar.store.get_state(mirrored[0])["active_subscriptions"][0]["id"]
    live_polar.store.cancel_subscription(mirrored[0], sub_id)
    states_refresh()
    assert not StateSubscription.objects.filter(customer_id=mirrored[0]).exists()
    assert StateSubscription.objects.count() == 4


def test_child_rows_are_replaced_atomically():
    customer_state_apply(payload=load_fixture("state"))
    broken = load_fixture("state")
    broken["active_subscriptions"] = broken["active_subscriptions"][:1]
    broken["granted_benefits"][0]["granted_at"] = "garbage"
    with pytest.raises(ValueError):
        customer_state_apply(payload=broken)
    # Nothing of the broken payload was written: the old state is whole.
    assert StateSubscription.objects.count() == 2 and StateBenefitGrant.objects.count() == 2


def test_an_unchanged_state_only_moves_its_freshness():
    customer_state_apply(payload=load_fixture("state"))
    before = CustomerState.objects.get().synced_at
    customer_written = Customer.objects.get().synced_at
    with CaptureQueriesContext(connection) as ctx:
        customer_state_apply(payload=load_fixture("state"))
    written = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(("DELETE", "INSERT"))]
    # No child row is replaced. The customer part goes through the customers'
    # upsert, whose statement the database skips for an unchanged row.
    assert all(sql.startswith('INSERT INTO "polar_sync_customer" ') for sql in written)
    assert Customer.objects.get().synced_at == customer_written
    assert CustomerState.objects.get().synced_at > before


def test_a_state_404_marks_the_customer_deleted(live_polar, mirrored):
    live_polar.store.delete_customer(mirrored[1])
    run = states_refresh()
    assert run.deleted == 1 and run.updated == 4
    assert Customer.objects.get(pk=mirrored[1]).deleted_at is not None


def test_balances_refresh(live_polar_2025, mirrored):
    run = balances_refresh()
    assert (run.status, run.updated, run.api_version) == ("succeeded", 5, "2025-10")
    assert CustomerBalance.objects.get(customer_id=mirrored[4]).balance == 400


@pytest.mark.parametrize("api_version", ["2026-04", "2026-10", "2027-01"])
def test_a_2026_version_refreshes_no_balance_and_keeps_the_stored_ones(
    live_polar, mirrored, polar_conf, api_version, caplog
):
    polar_conf(API_VERSION=api_version)
    CustomerBalance.objects.create(customer_id=mirrored[0], balance=5, currency="USD",
                                   synced_at="2020-01-01T00:00Z")  # fmt: skip
    live_polar.store.reset_requests()
    caplog.set_level("INFO", logger="polar_sync.sync")
    assert balances_refresh() is None
    customer_refresh(customer_id=mirrored[1])  # its state, no balance
    assert [r.path for r in live_polar.store.requests] == [f"/v1/customers/{mirrored[1]}/state"]
    assert CustomerBalance.objects.get().balance == 5
    assert not SyncRun.objects.filter(kind="balances").exists()
    assert f"API version {api_version} has no /balance" in caplog.text


def test_a_missing_balance_route_is_recorded_once_then_not_asked(live_polar_2025, mirrored):
    live_polar = live_polar_2025
    live_polar.faults.balance_route = False
    run = balances_refresh()
    assert run.endpoint_missing and run.requests == 1 and run.status == "succeeded"
    live_polar.store.reset_requests()
    assert balances_refresh() is None
    customer_refresh(customer_id=mirrored[0])  # state still refreshed, balance not asked
    assert [r.operation for r in live_polar.store.requests] == ["customers:get_state"]


def test_the_budget_holds_against_a_server_limited_to_100_a_minute(live_polar, mirrored, settings):
    """80 requests/minute budget (bucket of 20) against Polar's sandbox limit of 100, over
    three minutes of one clock shared by the budget and the server (no real waiting)."""
    store = live_polar.store
    for i in range(230):
        store.add_customer(email=f"extra{i}@example.com")
    customers_pull()
    clock = FakeClock()
    live_polar.faults.clock = clock.time
    live_polar.faults.rate_limit = 100
    live_polar.faults.reset_rate_limit()
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "RATE_LIMIT": 80}
    RequestBudget.objects.all().delete()
    store.reset_requests()
    run = states_refresh(max_requests=230, clock=clock)
    assert run.status == "succeeded"
    assert run.requests == 230 == len(store.requests)
    assert store.status_counts[429] == 0
    # The burst (20) went at once, then the budget paced the rest at 80 a minute.
    assert sum(clock.slept) == pytest.approx((230 - 20) / 80 * 60, rel=0.05)


def test_429s_are_handled_by_waiting_as_told(live_polar, mirrored, settings, monkeypatch):
    """With no budget to protect it, the server's 429s are waited out per Retry-After.

    The server's rate-limit window and the client's sleeps share a fake clock: the
    waits are real waits for the server, and no real time passes.
    """
    clock = FakeClock()
    live_polar.faults.clock = clock.time
    monkeypatch.setattr("polar_sync.client.time.sleep", clock.sleep)
    live_polar.faults.rate_limit = 3
    live_polar.faults.rate_limit_window = 1.0
    live_polar.faults.reset_rate_limit()
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "MAX_RETRIES": 5}
    live_polar.store.reset_requests()
    run = states_refresh()
    assert run.status == "succeeded" and run.updated == 5
    assert live_polar.store.status_counts[429] >= 1
    assert StateSubscription.objects.count() == 5
    assert clock.slept and sum(clock.slept) >= 1.0  # at least one Retry-After waited out


class FakeClock:
    def __init__(self) -> None:
        self.now, self.slept = 1000.0, []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_budget_waits_on_the_clock_it_is_given():
    """A minute of waiting for tokens, on an injected clock: the test takes no real time."""
    clock = FakeClock()
    budget = Budget(per_minute=60, capacity=2, name="clocked", clock=clock)
    for _ in range(2 + 60):
        assert budget_take(budget=budget)
    assert sum(clock.slept) == pytest.approx(60.0)
    assert budget_take(budget=budget, max_wait=0.5) is False  # a second away: not within 0.5
    assert clock.now == pytest.approx(1060.0)


def test_budget_bucket_math():
    budget = Budget(per_minute=60, capacity=2, name="t")
    assert budget_try_take(budget=budget, now=100.0) == 0.0
    assert budget_try_take(budget=budget, now=100.0) == 0.0
    wait = budget_try_take(budget=budget, now=100.0)
    assert wait == pytest.approx(1.0)  # one token a second
    assert budget_try_take(budget=budget, now=100.5) == pytest.approx(0.5)
    assert budget_try_take(budget=budget, now=101.0) == 0.0
    assert budget_try_take(budget=budget, now=1000.0) == 0.0  # refill is capped at capacity
    assert budget_try_take(budget=budget, now=1000.0) == 0.0
    assert budget_try_take(budget=budget, now=1000.0) > 0
    budget_pause(budget=budget, seconds=10, now=2000.0)
    assert budget_try_take(budget=budget, now=2005.0) == pytest.approx(6.0)


def test_default_budget_is_80_percent_of_the_servers_limit(settings):
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "sandbox"}
    assert (Budget.from_settings().per_minute, Budget.from_settings().capacity) == (80, 20)
    settings.POLAR_SYNC = {"ACCESS_TOKEN": "t", "SERVER": "production"}
    assert Budget.from_settings().per_minute == 400


def test_a_refresh_that_crashes_is_recorded_failed_and_does_not_hold_the_lock(
    live_polar, mirrored, monkeypatch
):
    from polar_sync.services import states as states_module

    def boom(**kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(states_module, "customer_state_refresh", boom)
    with pytest.raises(RuntimeError, match="out of memory"):
        states_refresh()
    crashed = SyncRun.objects.filter(kind=SyncRun.Kind.STATES).get()
    assert (crashed.status, crashed.error) == ("failed", "RuntimeError: out of memory")

    monkeypatch.undo()
    assert states_refresh().status == "succeeded"


def test_a_state_answered_for_another_customer_is_not_stored(db, client, polar_http):
    asked, other = load_fixture("customer"), load_fixture("state")
    customers_upsert(payloads=[asked])
    other["id"] = "0b6b2f0e-0000-4000-8000-000000000001"
    polar_http.get(f"{BASE_URL}/v1/customers/{asked['id']}/state", json=other)
    run = states_refresh(client=client)
    assert (run.status, run.failed) == ("partial", 1)
    assert "asked for customer" in run.error
    assert not CustomerState.objects.exists()
    assert set(Customer.objects.values_list("id", flat=True)) == {uuid.UUID(asked["id"])}
