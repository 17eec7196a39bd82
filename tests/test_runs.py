"""The sync run as a lock: heartbeats, taking over a dead run's lock, ending a run."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from polar_sync.models import RequestBudget, SyncRun
from polar_sync.services import budget as budget_module
from polar_sync.services import customers_pull, states_refresh
from polar_sync.services import runs as runs_module
from polar_sync.services.budget import BUDGET_NAME
from polar_sync.services.runs import sync_run_crashed, sync_run_finish, sync_run_start
from tests.conftest import BASE_URL, load_fixture

pytestmark = pytest.mark.django_db

CUSTOMERS = SyncRun.Kind.CUSTOMERS


class FakeClock:
    """Wall time for the budget (``time.time``) and the runs (``timezone.now``) that
    moves only when someone sleeps, or when a test moves it."""

    def __init__(self) -> None:
        self.wall, self.aware = time.time(), timezone.now()
        self.offset = 0.0
        self.slept: list[float] = []
        self.on_sleep = lambda: None

    def time(self) -> float:
        return self.wall + self.offset

    def now(self):
        return self.aware + timedelta(seconds=self.offset)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += seconds
        self.on_sleep()


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    clock = FakeClock()
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(time=clock.time, sleep=clock.sleep))
    monkeypatch.setattr(runs_module, "timezone", SimpleNamespace(now=clock.now))
    return clock


def _age_heartbeat(run: SyncRun, seconds: float) -> None:
    SyncRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_dead_runs_lock_is_taken_over_after_the_default_timeout_of_90_seconds(settings):
    assert "LOCK_TIMEOUT" not in settings.POLAR_SYNC  # the default applies
    dead = sync_run_start(kind=CUSTOMERS)
    _age_heartbeat(dead, 60)
    assert sync_run_start(kind=CUSTOMERS) is None  # maybe only slow: still its lock

    _age_heartbeat(dead, 100)
    new = sync_run_start(kind=CUSTOMERS)

    assert new is not None and new.status == "running"
    dead.refresh_from_db()
    assert dead.status == "abandoned" and dead.finished_at is not None
    assert "heartbeat" in dead.error


@pytest.mark.parametrize("kind", ["customers", "states"])
def test_a_run_keeps_its_lock_through_a_long_budget_wait(live_polar, settings, clock, kind):
    live_polar.store.seed(3, seed=5)
    if kind == "states":
        customers_pull()  # the customers whose states are due
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "RATE_LIMIT": 1, "LOCK_TIMEOUT": 90}
    # A 429 emptied the budget: the next token comes in 12 minutes.
    RequestBudget.objects.update_or_create(
        name=BUDGET_NAME, defaults={"tokens": -11.0, "updated_at": clock.time()}
    )
    other_worker: list[SyncRun | None] = []

    def another_worker_tries_after_10_minutes() -> None:
        if clock.offset >= 600 and not other_worker:
            other_worker.append(sync_run_start(kind=kind))

    clock.on_sleep = another_worker_tries_after_10_minutes

    run = customers_pull() if kind == "customers" else states_refresh()

    assert clock.offset >= 720 and max(clock.slept) <= 5  # it waited, in slices
    assert other_worker == [None]  # the waiting run still held the lock
    assert run.status == "succeeded" and run.updated + run.created == 3
    assert not SyncRun.objects.filter(status="abandoned").exists()


def test_a_run_that_lost_its_lock_stops_and_leaves_the_row_alone(live_polar, monkeypatch):
    live_polar.store.seed(500, seed=6)  # five pages
    later = SimpleNamespace(offset=timedelta(0))
    real_now = timezone.now
    monkeypatch.setattr(
        runs_module, "timezone", SimpleNamespace(now=lambda: real_now() + later.offset)
    )
    taken_over: list[SyncRun] = []

    def after_each_page(run: SyncRun) -> None:
        if run.pages == 2 and not taken_over:
            # The run stalled for two minutes; another worker took its lock meanwhile.
            later.offset = timedelta(minutes=2)
            SyncRun.objects.filter(pk=run.pk).update(status="abandoned")
            taken_over.append(sync_run_start(kind=CUSTOMERS))

    run = customers_pull(progress=after_each_page)

    assert run.status == "failed" and "lost its lock" in run.error
    assert run.pages < 5
    assert SyncRun.objects.get(pk=run.pk).status == "abandoned"
    assert SyncRun.objects.get(pk=taken_over[0].pk).status == "running"
    asked = [r for r in live_polar.store.requests if r.path == "/v1/customers/"]
    assert len(asked) < 5


def test_a_negative_total_count_is_stored_as_none_and_the_run_ends(polar_http, client):
    customer = load_fixture("customer")
    body = {"items": [customer], "pagination": {"total_count": -1, "max_page": 1}}
    polar_http.get(f"{BASE_URL}/v1/customers/", json=body)

    run = customers_pull(client=client)

    row = SyncRun.objects.get(pk=run.pk)
    assert (row.status, row.total_count, row.created) == ("succeeded", None, 1)


@pytest.mark.parametrize(
    ("value", "stored"),
    [(250, 250), (0, 0), (-1, None), (2**40, None), (True, None), ("12", None), (None, None)],
)
def test_count_field_keeps_only_counts_a_column_can_hold(value, stored):
    from polar_sync.mapping import count_field

    assert count_field(value) == stored


def test_finish_records_how_the_run_ended_when_the_full_record_is_refused():
    run = sync_run_start(kind=CUSTOMERS)
    run.pages, run.requests = 7, -1  # a value the column refuses

    sync_run_finish(run=run, status=SyncRun.Status.SUCCEEDED)

    row = SyncRun.objects.get(pk=run.pk)
    assert row.status == "succeeded" and row.finished_at is not None
    assert row.pages == 0 and "could not be saved" in row.error
    assert sync_run_start(kind=CUSTOMERS) is not None  # the lock is free


def test_a_crash_recorded_with_a_refused_counter_still_frees_the_lock():
    run = sync_run_start(kind=CUSTOMERS)
    run.total_count = -3

    sync_run_crashed(run=run, exc=RuntimeError("disk on fire"))

    row = SyncRun.objects.get(pk=run.pk)
    assert row.status == "failed"
    assert row.error.startswith("RuntimeError: disk on fire")
    assert sync_run_start(kind=CUSTOMERS) is not None
