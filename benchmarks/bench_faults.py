"""How many runs and requests a customer pull needs to finish when Polar fails often.

    .venv/bin/python benchmarks/bench_faults.py [--customers 20000] [--fail-rate 0.3] [--seed 1]
    .venv/bin/python benchmarks/bench_faults.py --postgres postgres://polar:polar@127.0.0.1:5432/postgres

Starts the local Polar server in this process with ``--customers`` customers and
measures a clean pull (fail rate 0, fresh database). Then it sets the fail rate
(500/502/503 answers drawn from an RNG seeded by ``--seed``) and runs
``customers_pull`` again and again, as a scheduler would, until one run finishes
(succeeded or partial), at most ``--max-runs`` times: on the mirror the clean
pull wrote (a scheduled pull), or with ``--empty-mirror`` on a fresh database.
Before each run the server deletes ``--churn`` customers at random positions
and adds as many (so page numbers shift under a resumed walk, and deletions are
there to detect); ``--churn 0`` turns that off.

Prints each run, then: runs, total requests (every HTTP attempt the client sent,
its own retries included), the ratio to the clean pull's requests, and the
customers wrongly marked deleted (deleted in the mirror, alive on the server).

The client keeps its default retries (MAX_RETRIES); its backoff is shortened and
the request budget lifted, so that a run takes seconds: neither changes how many
requests are sent. Runs on a temporary SQLite file, or on a temporary PostgreSQL
database created (and dropped) through the given server URL.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _support import scratch_database


def setup_django(postgres: str | None) -> tuple[str, Any]:
    """Point Django at a scratch database and create every table; returns (label, cleanup)."""
    label, cleanup = scratch_database(postgres=postgres, stem="bench_faults")
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG keeps every query's SQL in memory
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    return label, cleanup


def fresh_database() -> None:
    from django.core.management import call_command

    call_command("flush", interactive=False, verbosity=0)


def churn(server: Any, rng: random.Random, count: int) -> None:
    """Delete ``count`` live customers at random positions and add ``count`` new ones."""
    live = [c["id"] for c in server.store.customers()]
    for customer_id in rng.sample(live, min(count, len(live))):
        server.store.delete_customer(customer_id)
    for _ in range(count):
        server.store.add_customer()


def describe(run: Any) -> str:
    resumed = getattr(run, "resumed_from_page", None)
    where = "" if resumed is None else f"  resumed from page {resumed}"
    error = run.error.strip().splitlines()[0][:70] if run.error.strip() else ""
    return (
        f"{run.status:9s} pages {run.pages:4d}  requests {run.requests:5d}"
        f"  deleted {run.deleted:3d}{where}" + (f"  ({error})" if error else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=1, help="seeds the fault RNG and the churn")
    parser.add_argument("--max-runs", type=int, default=50)
    parser.add_argument(
        "--churn", type=int, default=2, help="customers deleted and added between runs (0: none)"
    )
    parser.add_argument(
        "--empty-mirror", action="store_true", help="start the faulty runs on a fresh database"
    )
    parser.add_argument("--postgres", default="", help="PostgreSQL server URL ('' for SQLite)")
    parser.add_argument(
        "--max-retries", type=int, default=None, help="the client's MAX_RETRIES (default: its own)"
    )
    parser.add_argument("--verbose", action="store_true", help="print every run")
    args = parser.parse_args()

    label, cleanup = setup_django(args.postgres or None)
    logging.getLogger("polar_sync").setLevel(logging.CRITICAL)  # retries log warnings
    from django.conf import settings

    from polar_sync.models import Customer, SyncRun
    from polar_sync.services import customers_pull
    from polar_sync.testing import Faults, LocalPolarServer

    server = LocalPolarServer(customers=args.customers, seed=0).start()
    settings.POLAR_SYNC = {
        "ACCESS_TOKEN": server.token,
        "SERVER": server.url,
        "RATE_LIMIT": 100_000_000,  # the local server has no limit; measure the pull
        "BACKOFF_BASE": 0.001,
        "BACKOFF_MAX": 0.01,
    }
    if args.max_retries is not None:
        settings.POLAR_SYNC["MAX_RETRIES"] = args.max_retries
    finished = (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    try:
        print(f"== {args.customers:,} customers, fail rate {args.fail_rate}, seed {args.seed}")
        mirror = "an empty mirror" if args.empty_mirror else "the mirror of a clean pull"
        print(f"   churn {args.churn} deleted + {args.churn} added before each run; {label}")
        print(f"   the faulty runs start on {mirror}")
        started = time.perf_counter()
        clean = customers_pull()
        assert clean is not None and clean.status in finished, clean and clean.error
        print(f"clean pull: {clean.pages} pages, {clean.requests} requests")

        if args.empty_mirror:
            fresh_database()
        server.faults = Faults(fail_rate=args.fail_rate, seed=args.seed)
        rng = random.Random(args.seed)
        server.store.reset_requests()
        runs = requests = pages = 0
        done = None
        while runs < args.max_runs:
            if args.churn:
                churn(server, rng, args.churn)
            run = customers_pull()
            assert run is not None, "another run holds the lock"
            runs += 1
            requests += run.requests
            pages += run.pages
            if args.verbose:
                print(f"  run {runs:2d}: {describe(run)}")
            if run.status in finished:
                done = run
                break
        seconds = time.perf_counter() - started

        alive = {c["id"] for c in server.store.customers()}
        deleted = {str(pk) for (pk,) in Customer.objects.exclude(deleted_at=None).values_list("id")}
        wrongly = len(deleted & alive)
        active = {str(pk) for (pk,) in Customer.objects.active().values_list("id")}
        missed = len(active - alive)
        outcome = "finished" if done else f"did not finish in {args.max_runs} runs"
        print(f"runs: {runs} ({outcome})")
        print(
            f"requests: {requests} ({requests / max(clean.requests, 1):.2f}x"
            f" the clean pull's {clean.requests})"
        )
        print(f"wrongly deleted: {wrongly}")
        # Where the requests went: every failed attempt is a request, so no strategy
        # sends fewer than the successful ones / (1 - fail rate).
        served = server.store.requests
        lists = [r for r in served if r.path == "/v1/customers/"]
        gets = [r for r in served if r.path != "/v1/customers/"]
        ok = sum(1 for r in served if r.status < 500)
        print(
            f"of which: list {len(lists)} ({sum(r.status >= 500 for r in lists)} failed),"
            f" get {len(gets)} ({sum(r.status >= 500 for r in gets)} failed);"
            f" {len(served) - ok} failed in all ({(len(served) - ok) / max(len(served), 1):.1%});"
            f" {pages} pages read (a walk is {clean.pages})"
        )
        print(
            f"floor (the {ok} answered requests / (1 - fail rate)):"
            f" {ok / (1 - args.fail_rate) / max(clean.requests, 1):.2f}x"
        )
        print(f"deleted on the server, still active in the mirror: {missed}")
        print(f"({seconds:.0f}s in all)")
    finally:
        server.stop()
        cleanup()


if __name__ == "__main__":
    main()
