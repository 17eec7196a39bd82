"""What pushing local users to Polar costs: the user's save, the drain, the API calls.

    .venv/bin/python benchmarks/bench_push.py [--saves 2000] [--users 1000]
    .venv/bin/python benchmarks/bench_push.py --postgres postgres://polar:polar@127.0.0.1:5432/postgres

Prints:
0. what loading 10,000 users costs with polar_sync installed (no receiver runs);
1. the time and the queries ``user.save()`` gains inside a transaction from
   polar_sync's receiver (median and p95 over ``--saves`` saves, receiver connected vs
   disconnected), for a save that changes the payload (an outbox row is written) and
   for one that does not (``last_login``);
2. drain throughput against the local Polar server over real HTTP (pushes/s), for new
   users (update_external 404 + create) and for updates (one PATCH each);
3. API calls per 1,000 user updates spread over 100 users: with a broker and a worker
   (each task runs PUSH_DELAY after its commit), at full speed and paced; with the
   broker down (the periodic drain only); without a broker (in-process after each commit).

Runs on a temporary SQLite file, or on a temporary PostgreSQL database created (and
dropped) through the given server URL.
"""

from __future__ import annotations

import argparse
import heapq
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import scratch_database


def setup_django(postgres: str | None) -> tuple[str, Any]:
    """Point Django at a scratch database and create every table; returns (label, cleanup)."""
    label, cleanup = scratch_database(postgres=postgres, stem="bench_push")
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    # As in production: with DEBUG, Django keeps every query's SQL, and on SQLite it
    # runs one more query per statement to quote the parameters for that record.
    os.environ["DJANGO_DEBUG"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    # The tables, indexes and constraints users get (migrations drop some of what
    # creating the models directly would add).
    call_command("migrate", interactive=False, verbosity=0)
    return label, cleanup


def median_p95(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95)]
    return f"median {statistics.median(ordered) * 1e3:.3f} ms, p95 {p95 * 1e3:.3f} ms"


def time_save(user: Any, n: int, case: str) -> float:
    """Seconds one ``user.save()`` takes inside its transaction (the commit is not timed)."""
    from django.contrib.auth.models import update_last_login
    from django.db import transaction

    from polar_sync.services import outbox_drain

    with transaction.atomic():
        if case == "last_login":
            started = time.perf_counter()
            update_last_login(None, user)
        else:
            user.first_name = f"Name{n}"
            started = time.perf_counter()
            user.save()
        elapsed = time.perf_counter() - started
    if case == "pushed":  # a worker pushes each change before the next one (untimed)
        outbox_drain(external_id=str(user.pk), force=True)
    return elapsed


def count_queries(user: Any, n: int, case: str) -> int:
    """The queries one such save runs (counted apart from the timed saves)."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries:
            if case == "last_login":
                user.save(update_fields=["last_login"])
            else:
                user.first_name = f"Count{n}"
                user.save()
        transaction.set_rollback(True)
    return len(queries)


def bench_load(users: int = 10_000) -> None:
    """Loading users runs no polar_sync code: the same time with or without the app."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_init, pre_save

    model = get_user_model()
    model.objects.bulk_create(
        [model(username=f"load{n}", email=f"load{n}@example.com") for n in range(users)]
    )
    best = min(_timed(lambda: list(model.objects.all()[:users])) for _ in range(10))
    hooks = post_init.has_listeners(model) or pre_save.has_listeners(model)
    print(
        f"0. loading {users:,} users: {best * 1e3:.0f} ms (best of ten); "
        f"post_init/pre_save receivers on the user model: {'yes' if hooks else 'none'}"
    )
    model.objects.filter(username__startswith="load").delete()


def _timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def time_one_insert(user: Any, n: int) -> float:
    """Seconds one plain single-row INSERT takes right after the user's own save, in the
    same transaction (rolled back): what writing anything with the user costs at least."""
    from django.db import connection, transaction

    from polar_sync.models import PushedPayload

    table = connection.ops.quote_name(PushedPayload._meta.db_table)
    sql = f"INSERT INTO {table} (external_id, payload, pushed_at) VALUES (%s, %s, %s)"
    with transaction.atomic():
        user.first_name = f"Floor{n}"
        user.save()
        payload = PushedPayload._meta.get_field("payload").get_db_prep_save({}, connection)
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql, [f"floor-{n}", payload, user.date_joined])
            elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed


CASES = {
    "pushed": "payload changed, the previous change already pushed (one row written)",
    "waiting": "payload changed while the previous change waits (coalesced into its row)",
    "last_login": "last_login only (nothing written)",
}


def bench_receiver(saves: int) -> None:
    from django.db.models.signals import post_save

    from polar_sync import receivers
    from polar_sync.services import outbox_drain
    from tests.push_support import make_user

    user = make_user()
    model = user.__class__
    print(f"1. user.save() inside a transaction ({saves} saves per case, receiver on vs off):")
    for case, label in CASES.items():
        samples: dict[bool, list[float]] = {True: [], False: []}
        for n in range(saves + 100):
            # Alternate on and off, so that a load change on the machine hits both alike.
            for connected in (n % 2 == 0, n % 2 == 1):
                if connected:
                    receivers.connect()
                else:
                    post_save.disconnect(dispatch_uid="polar_sync.user_saved", sender=model)
                elapsed = time_save(user, n, case)
                if n >= 100:  # the first hundred warm up
                    samples[connected].append(elapsed)
        post_save.disconnect(dispatch_uid="polar_sync.user_saved", sender=model)
        bare = count_queries(user, 0, case)
        receivers.connect()
        if case == "pushed":
            outbox_drain(force=True)
        added = count_queries(user, 1, case) - bare
        outbox_drain(force=True)
        gain = statistics.median(samples[True]) - statistics.median(samples[False])
        print(f"   {label}:")
        print(f"     receiver on:  {median_p95(samples[True])}")
        print(f"     receiver off: {median_p95(samples[False])}")
        print(f"     gain: median {gain * 1e3:.3f} ms, {added} quer{'y' if added == 1 else 'ies'}")
    post_save.disconnect(dispatch_uid="polar_sync.user_saved", sender=model)
    floor = [time_one_insert(user, n) for n in range(saves + 100)][100:]
    receivers.connect()
    print("   the least one more statement costs (a plain INSERT of a 3-column row after the")
    print(f"   user's save, in its transaction): median {statistics.median(floor) * 1e3:.3f} ms")


def bench_drain(server: Any, users: int, broker: Any) -> None:
    from polar_sync.services import outbox_drain
    from tests.push_support import make_user

    created = [make_user() for _ in range(users)]
    broker.sent.clear()
    started = time.perf_counter()
    result = outbox_drain(force=True)
    elapsed = time.perf_counter() - started
    assert result.created == users, result
    print(f"2. drain throughput against the local Polar server ({users} rows, real HTTP):")
    print(
        f"   new users: {users / elapsed:,.0f} pushes/s "
        f"({result.requests / elapsed:,.0f} requests/s; {result.requests} requests)"
    )
    for user in created:
        user.last_name = "Updated"
        user.save()
    broker.sent.clear()
    started = time.perf_counter()
    result = outbox_drain(force=True)
    elapsed = time.perf_counter() - started
    assert result.updated == users, result
    print(f"   updates:   {users / elapsed:,.0f} pushes/s ({result.requests} requests)")


class DelayedWorker:
    """A worker thread running pushed tasks once their countdown is over, like Celery's."""

    def __init__(self) -> None:
        self.queue: list[tuple[float, int, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.seq = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def send_task(self, name: str, args: Any = None, countdown: float = 0, **options: Any) -> None:
        with self.lock:
            self.seq += 1
            heapq.heappush(self.queue, (time.monotonic() + (countdown or 0), self.seq, args[0]))

    def run(self) -> None:
        from django.db import connection

        from polar_sync.services import outbox_drain

        while not (self.stop.is_set() and not self.queue):
            with self.lock:
                due = self.queue[0] if self.queue and self.queue[0][0] <= time.monotonic() else None
                if due:
                    heapq.heappop(self.queue)
            if due:
                outbox_drain(external_id=due[2])
            else:
                time.sleep(0.005)
        connection.close()


def bench_api_calls(server: Any, celery_app: Any) -> None:
    from polar_sync.services import outbox_drain, push
    from tests.push_support import make_user, push_requests

    users = [make_user() for _ in range(100)]
    outbox_drain(force=True)
    rng = random.Random(0)
    plan = [rng.randrange(100) for _ in range(1000)]

    def updates(tag: str, pace: float = 0.0) -> float:
        """Make the 1,000 updates, each in its own transaction; returns the seconds taken.

        Names are new in each scenario (``tag``): a scenario ending on the names the
        previous one pushed would cost no call at all (the drain skips what Polar has).
        """
        started = time.perf_counter()
        for n, index in enumerate(plan):
            user = users[index]
            user.first_name = f"{tag}{n}"
            user.save()
            if pace:
                time.sleep(pace)
        return time.perf_counter() - started

    def calls_with_worker(tag: str, pace: float) -> tuple[int, float]:
        worker = DelayedWorker()
        celery_app.send_task = worker.send_task
        server.store.reset_requests()
        worker.thread.start()
        took = updates(tag, pace)
        worker.stop.set()
        worker.thread.join()
        return push_requests(server), took

    print("3. API calls for 1,000 updates spread over 100 users:")
    celery_app.conf.task_always_eager = False
    for label, tag, pace in (("at full speed", "F", 0.0), ("5 ms apart", "P", 0.005)):
        calls, took = calls_with_worker(tag, pace)
        print(
            f"   broker + worker, updates {label + ':':15s} {calls:4d} calls "
            f"(updates took {took:.1f} s; PUSH_DELAY = {push.PUSH_DELAY:g} s)"
        )

    def broker_down(name: str, *args: Any, **options: Any) -> None:
        raise ConnectionError("broker down")

    celery_app.send_task = broker_down
    server.store.reset_requests()
    updates("D")
    outbox_drain()  # what the periodic drain does once the broker is back
    print(f"   broker down, then the periodic drain:      {push_requests(server):4d} calls")

    celery_app.conf.task_always_eager = True
    server.store.reset_requests()
    updates("E")
    print(f"   no broker (in-process after each commit):  {push_requests(server):4d} calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000, help="timed saves per case")
    parser.add_argument("--users", type=int, default=1000, help="rows for the drain figure")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database is made)")
    args = parser.parse_args()

    label, cleanup = setup_django(args.postgres)
    import logging

    from celery import current_app
    from django.conf import settings

    from polar_sync.testing import LocalPolarServer
    from tests.push_support import RecordingBroker

    logging.getLogger("polar_sync").setLevel(logging.ERROR)
    try:
        with LocalPolarServer() as server:
            settings.POLAR_SYNC = {
                "ACCESS_TOKEN": server.token,
                "SERVER": server.url,
                "RATE_LIMIT": 1_000_000,  # measure polar_sync, not the budget's pacing
            }
            app = current_app._get_current_object()
            broker = RecordingBroker()
            app.conf.task_always_eager = False
            app.send_task = broker  # rows are written, nothing is drained behind our back
            print(f"database: {label}; Polar: local server at {server.url}")
            bench_load()
            bench_receiver(args.saves)
            bench_drain(server, args.users, broker)
            bench_api_calls(server, app)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
