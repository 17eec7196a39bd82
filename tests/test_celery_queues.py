"""The queues of polar_sync.schedule with two real workers and real Redis: a push is done
while a long states refresh occupies the worker of the sync queue, and each worker logs
each run's INFO summary once."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from polar_sync import tasks
from polar_sync.models import SyncRun
from polar_sync.schedule import PUSH_QUEUE, SYNC_QUEUE, TASK_ROUTES, WEBHOOKS_QUEUE
from polar_sync.services import customers_pull
from polar_sync.services.broker import broker_connection, broker_send
from tests import worker_support
from tests.push_support import make_user, polar_customer
from tests.worker_support import running_workers, use_routes, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

# Fixtures this module uses, from the shared support module.
redis_url = worker_support.redis_url
shared_database = worker_support.shared_database


def test_the_queues_split_pushes_and_webhooks_from_pulls_and_refreshes():
    by_queue: dict[str, set[str]] = {}
    for task, route in TASK_ROUTES.items():
        by_queue.setdefault(route["queue"], set()).add(task)
    assert {"polar_sync.push_user", "polar_sync.drain_outbox"} <= by_queue[PUSH_QUEUE]
    assert {"polar_sync.process_webhook", "polar_sync.sweep_webhooks"} <= by_queue[WEBHOOKS_QUEUE]
    assert {
        "polar_sync.pull_customers",
        "polar_sync.refresh_states",
        "polar_sync.refresh_balances",
    } <= by_queue[SYNC_QUEUE]
    registered = {name for name in tasks.pull_customers.app.tasks if name.startswith("polar_sync.")}
    assert registered <= set(TASK_ROUTES), registered - set(TASK_ROUTES)  # none left to "celery"


@pytest.mark.slow
def test_a_push_is_done_while_a_long_refresh_occupies_the_sync_worker(
    live_polar, shared_database, redis_url, monkeypatch, tmp_path, request
):
    for n in range(3):
        live_polar.store.add_customer(email=f"team{n}@example.com")
    assert customers_pull().status == SyncRun.Status.SUCCEEDED  # their states are now due

    # The refresh's first GET /state waits, inside the worker, until the test lets it go.
    refreshing, release = threading.Event(), threading.Event()
    api_state = live_polar.store.api_state

    def slow_state(**kwargs: Any) -> dict:
        refreshing.set()
        release.wait(timeout=120)
        return api_state(**kwargs)

    monkeypatch.setattr(live_polar.store, "api_state", slow_state)

    # polar_sync's routes, on queues of this test's own (Redis is shared).
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    use_routes(request, {task: {"queue": prefix + r["queue"]} for task, r in TASK_ROUTES.items()})
    with running_workers(
        live_polar=live_polar,
        database_url=shared_database,
        redis_url=redis_url,
        monkeypatch=monkeypatch,
        log_dir=tmp_path,
    ) as workers:
        sync_log = workers.start(prefix + SYNC_QUEUE, name="sync")
        fast_log = workers.start(prefix + PUSH_QUEUE, prefix + WEBHOOKS_QUEUE, name="fast")
        try:
            # Over a connection of its own, as polar_sync sends pushes: Celery's producer
            # pool keeps the broker URL of its first use (another test's).
            with broker_connection() as connection:
                broker_send("polar_sync.refresh_states", args=[], connection=connection)
            wait_for(refreshing.is_set, "the sync worker to start the states refresh")

            user = make_user(email="while-refreshing@example.com")
            wait_for(lambda: polar_customer(live_polar, user.pk), "the push worker to push")
            # ... while the refresh still holds the sync worker.
            run = SyncRun.objects.get(kind=SyncRun.Kind.STATES)
            assert run.status == SyncRun.Status.RUNNING
            assert not release.is_set()
        finally:
            release.set()
        wait_for(
            lambda: (
                SyncRun.objects.get(kind=SyncRun.Kind.STATES).status == SyncRun.Status.SUCCEEDED
            ),
            "the refresh to finish",
        )
        run = SyncRun.objects.get(kind=SyncRun.Kind.STATES)
        assert run.updated == 3
        wait_for(lambda: f"states sync run {run.pk} " in sync_log.read_text(), "its summary")
        wait_for(lambda: "push_user: 1 pushed" in fast_log.read_text(), "the push's summary")

    # One INFO line per run, printed once (no second handler).
    assert sync_log.read_text().count(f"states sync run {run.pk} succeeded") == 1
    assert fast_log.read_text().count("push_user: 1 pushed (1 created") == 1
