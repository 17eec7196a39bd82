"""A real broker and a real worker: user saves travel through Redis to a Celery worker
subprocess, which pushes them to the local Polar server.

Needs Redis: POLAR_SYNC_TEST_REDIS_URL (CI exports it and starts Redis, so there the test
fails rather than skips when Redis is down), else redis://127.0.0.1:6379/0 if reachable;
otherwise the test is skipped and says how to run it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from polar_sync.models import Customer, PushOutbox
from polar_sync.services import push
from tests import worker_support
from tests.push_support import make_user, polar_customer
from tests.worker_support import running_workers, use_routes, wait_for

# Fixtures this module uses, from the shared support module.
redis_url = worker_support.redis_url
shared_database = worker_support.shared_database

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


@pytest.fixture
def worker(
    live_polar,
    shared_database,
    redis_url,
    monkeypatch,
    tmp_path,
    request,
) -> Iterator[str]:
    """A Celery worker subprocess on a queue of its own; this process sends every task to it."""
    queue = f"polar-sync-test-{uuid.uuid4().hex[:12]}"
    use_routes(request, {"polar_sync.*": {"queue": queue}})
    with running_workers(
        live_polar=live_polar,
        database_url=shared_database,
        redis_url=redis_url,
        monkeypatch=monkeypatch,
        log_dir=tmp_path,
    ) as workers:
        workers.start(queue)
        yield queue


@pytest.mark.slow
def test_user_changes_reach_polar_through_the_broker_and_a_worker(live_polar, worker):
    store = live_polar.store
    user = make_user(email="broker@example.com", first_name="Via", last_name="Redis")
    assert PushOutbox.objects.filter(external_id=str(user.pk)).exists()  # the worker's job
    wait_for(lambda: polar_customer(live_polar, user.pk), "the worker to create the customer")
    assert polar_customer(live_polar, user.pk)["name"] == "Via Redis"
    wait_for(lambda: not PushOutbox.objects.exists(), "the worker to clear the outbox")
    assert Customer.objects.get(external_id=str(user.pk)).user_id == user.pk  # mirrored

    # ten quick saves: PUSH_DELAY lets the first task push the latest payload
    store.reset_requests()
    for n in range(10):
        user.first_name = f"Quick{n}"
        user.save()
    wait_for(
        lambda: polar_customer(live_polar, user.pk)["name"] == "Quick9 Redis",
        "the last of ten quick saves",
    )
    time.sleep(push.PUSH_DELAY + 1.0)  # the other nine tasks: due, run, found nothing to do
    assert 1 <= store.request_counts["customers:update_external"] <= 2
    assert not PushOutbox.objects.exists()

    customer_id = polar_customer(live_polar, user.pk)["id"]
    user.delete()
    wait_for(
        lambda: store.get_customer(customer_id)["deleted_at"] is not None,
        "the worker to delete the customer",
    )
    wait_for(lambda: Customer.objects.get(pk=customer_id).is_deleted, "the mirror to follow")
