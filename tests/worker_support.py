"""Real Celery workers for the broker tests: Redis, a database both processes open, and
worker subprocesses of the demo project, each on queues of its own.

Needs Redis: POLAR_SYNC_TEST_REDIS_URL (CI exports it and starts Redis, so there the tests
fail rather than skip when Redis is down), else redis://127.0.0.1:6379/0 if reachable;
otherwise the tests are skipped and say how to run them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import current_app
from django.apps import apps
from django.db import connection

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


def use_routes(request: pytest.FixtureRequest, routes: dict[str, dict[str, str]]) -> None:
    """Send from this process with ``routes`` (CELERY_TASK_ROUTES) until the test ends."""
    amqp, saved = current_app.amqp, current_app.conf.task_routes

    def apply(value: object) -> None:
        current_app.conf.task_routes = value
        amqp.__dict__.pop("router", None)  # a cached_property built from the routes
        amqp.flush_routes()

    apply(routes)
    request.addfinalizer(lambda: apply(saved))


class Workers:
    """Starts worker subprocesses (``--pool=solo``: one task at a time each)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.processes: list[tuple[subprocess.Popen, Path]] = []
        self.queues: list[str] = []

    def start(self, *queues: str, name: str = "worker") -> Path:
        """A worker consuming ``queues``; returns the path of its log."""
        log = self.log_dir / f"{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "project", "worker", "--pool=solo",
            "--queues", ",".join(queues), "--hostname", f"{name}-{uuid.uuid4().hex[:8]}@%h",
            "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=output, stderr=output
            )
        self.processes.append((process, log))
        self.queues.extend(queues)
        return log

    def stop(self, redis_url: str) -> None:
        for process, _ in self.processes:
            process.terminate()
        for process, log in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            print(f"\n--- worker log ({log}) ---\n{log.read_text()[-4000:]}")
        import redis

        client = redis.Redis.from_url(redis_url)
        for queue in self.queues:
            client.delete(queue, f"_kombu.binding.{queue}")
        client.close()


@contextmanager
def running_workers(
    *, live_polar, database_url: str, redis_url: str, monkeypatch, log_dir: Path
) -> Iterator[Workers]:
    """Workers of the demo project on the test's database and local Polar server; this
    process sends to the broker (not eagerly)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "POLAR_ACCESS_TOKEN": live_polar.token,
        "POLAR_SERVER": live_polar.url,
        "POLAR_RATE_LIMIT": "100000",
    }
    env.pop("POLAR_SYNC_LOG_LEVEL", None)  # the worker's --loglevel decides
    workers = Workers(env, log_dir)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setitem(current_app.conf, "task_always_eager", False)
    monkeypatch.setitem(current_app.conf, "broker_url", redis_url)
    try:
        yield workers
    finally:
        workers.stop(redis_url)


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
