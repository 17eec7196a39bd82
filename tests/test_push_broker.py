"""A real broker and a real worker: user saves travel through Redis to a Celery worker
subprocess, which pushes them to the local Polar server.

Needs Redis: POLAR_SYNC_TEST_REDIS_URL (CI exports it and starts Redis, so there the test
fails rather than skips when Redis is down), else redis://127.0.0.1:6379/0 if reachable;
otherwise the test is skipped and says how to run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import current_app
from django.apps import apps
from django.db import connection

from polar_sync.models import Customer, PushOutbox
from polar_sync.services import push
from tests.push_support import make_user, polar_customer

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_problem(url: str) -> str | None:
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture
def redis_url() -> str:
    configured = os.environ.get("POLAR_SYNC_TEST_REDIS_URL")
    url = configured or DEFAULT_REDIS_URL
    problem = _redis_problem(url)
    if problem and configured:
        pytest.fail(f"POLAR_SYNC_TEST_REDIS_URL={configured} is set but unreachable: {problem}")
    if problem:
        pytest.skip(
            f"no Redis at {url} ({problem}): run `apt-get install -y redis-server && "
            "redis-server --daemonize yes`, or set POLAR_SYNC_TEST_REDIS_URL"
        )
    return url


@pytest.fixture
def shared_database(transactional_db, tmp_path) -> Iterator[str]:
    """The test's database, reachable from another process: yields its DATABASE_URL.

    pytest-django's SQLite test database lives in this process's memory, so for this
    test the connection moves to a file, with the same tables, that both processes open.
    """
    if connection.vendor != "sqlite":
        s = connection.settings_dict
        yield (
            f"postgres://{quote(s['USER'])}:{quote(s['PASSWORD'])}@"
            f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
        )
        return
    settings_dict = connection.settings_dict
    memory_name, memory_connection = settings_dict["NAME"], connection.connection
    path = tmp_path / "shared.sqlite3"
    connection.connection = None  # keep the in-memory one open aside: closing would drop it
    settings_dict["NAME"] = str(path)
    try:
        with connection.schema_editor() as editor:
            for model in apps.get_models():
                editor.create_model(model)
        yield f"sqlite:///{path}"
    finally:
        connection.close()
        settings_dict["NAME"] = memory_name
        connection.connection = memory_connection


@pytest.fixture
def worker(live_polar, shared_database, redis_url, monkeypatch, tmp_path) -> Iterator[str]:
    """A Celery worker subprocess on a queue of its own; this process sends to it."""
    queue = f"polar-sync-test-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": shared_database,
        "CELERY_BROKER_URL": redis_url,
        "POLAR_ACCESS_TOKEN": live_polar.token,
        "POLAR_SERVER": live_polar.url,
        "POLAR_RATE_LIMIT": "100000",
    }
    log = tmp_path / "worker.log"
    command = [
        sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo",
        "--queues", queue, "--hostname", f"{queue}@%h", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=output)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setitem(current_app.conf, "broker_url", redis_url)
    monkeypatch.setitem(current_app.conf, "task_default_queue", queue)
    try:
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        import redis

        client = redis.Redis.from_url(redis_url)
        client.delete(queue, f"_kombu.binding.{queue}")
        client.close()
        print(f"\n--- worker log ({log}) ---\n{log.read_text()[-4000:]}")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


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
