"""Benchmark the customer pull against the local Polar server.

    .venv/bin/python benchmarks/bench_pull.py [--sizes 10000 100000] [--postgres URL]

For each size and database it prints: customers/s of a full pull and the floor
(just fetching and decoding the same pages, measured as the pull sees the
server: after a first walk has warmed its rendering), the same data through a naive
``update_or_create`` loop, SQL queries per page, peak RSS of the pulling
process, and rows written and time for a second, unchanged pull.

The local Polar server runs in its own process (its memory is not the
pull's), and every measurement runs in a fresh process so that peak RSS
belongs to that measurement alone. The request budget is lifted: the local
server has no rate limit, and Polar's would measure the budget, not the code.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import ROOT, start_polar_server

TOKEN = "bench-token"


def run_worker(mode: str, url: str, db: str, limit: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--url", url, "--db", db]
    if limit:
        cmd += ["--limit", str(limit)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"worker {mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------- worker


def worker(mode: str, url: str, db: str, limit: int | None) -> dict:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        DATABASE_URL=db,
        POLAR_ACCESS_TOKEN=TOKEN,
        POLAR_SERVER=url,
        POLAR_RATE_LIMIT="100000000",
        DJANGO_DEBUG="0",  # DEBUG keeps every query's SQL in memory
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from polar_sync.client import PolarClient

    stats = {"queries": 0, "customer_rows_written": 0}

    def counting(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        stats["queries"] += 1
        head = sql.lstrip()[:40].upper()
        if head.startswith(("INSERT", "UPDATE")) and '"POLAR_SYNC_CUSTOMER"' in head:
            stats["customer_rows_written"] += max(context["cursor"].rowcount, 0)
        return result

    started = time.perf_counter()
    result: dict = {}
    if mode == "floor":
        client = PolarClient(access_token=TOKEN, server=url)
        n = sum(len(page["items"]) for page in client.iter_pages(sorting=["created_at"]))
        result = {"customers": n}
    elif mode in ("pull", "repull"):
        from polar_sync.services import customers_pull

        with connection.execute_wrapper(counting):
            run = customers_pull()
        result = {
            "customers": run.created + run.updated + run.unchanged,
            "pages": run.pages,
            "status": run.status,
            "created": run.created,
            "updated": run.updated,
        }
    elif mode == "naive":
        from django.utils import timezone

        from polar_sync.mapping import customer_fields
        from polar_sync.models import Customer

        client = PolarClient(access_token=TOKEN, server=url)
        n = 0
        with connection.execute_wrapper(counting):
            for customer in client.iter_customers(sorting=["created_at"]):
                fields = customer_fields(customer)
                pk = fields.pop("id")
                Customer.objects.update_or_create(
                    id=pk, defaults={**fields, "synced_at": timezone.now()}
                )
                n += 1
                if limit and n >= limit:
                    break
        result = {"customers": n}
    result["seconds"] = time.perf_counter() - started
    result["queries"] = stats["queries"]
    result["customer_rows_written"] = stats["customer_rows_written"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def reset_db(db: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": db}
    if db.startswith("sqlite"):
        path = Path(db.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        subprocess.run(
            [sys.executable, "manage.py", "flush", "--noinput"], cwd=ROOT, env=env, check=False
        )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def bench(size: int, db_name: str, db: str, naive_limit: int, latency: float) -> float:
    server, url = start_polar_server(customers=size, latency=latency, token=TOKEN)
    try:
        # The local server renders a customer's JSON on its first request and
        # reuses it after: a first walk is slower than the ones after it. The
        # pull comes after a walk, so its floor is a walk after a walk too.
        cold = run_worker("floor", url, db)
        floor = run_worker("floor", url, db)
        reset_db(db)
        pull = run_worker("pull", url, db)
        repull = run_worker("repull", url, db)
        reset_db(db)
        naive = run_worker("naive", url, db, limit=naive_limit)
    finally:
        server.terminate()
        server.wait()
    rate = pull["customers"] / pull["seconds"]
    floor_rate = floor["customers"] / floor["seconds"]
    naive_rate = naive["customers"] / naive["seconds"]
    extra = f", {latency * 1000:.0f} ms added per request" if latency else ""
    print(f"\n== {size:,} customers on {db_name}{extra}")
    print(
        f"full pull:        {rate:10,.0f} customers/s  ({pull['seconds']:.1f}s, {pull['status']})"
    )
    cold_rate = cold["customers"] / cold["seconds"]
    print(
        f"fetch+decode:     {floor_rate:10,.0f} customers/s  ({floor['seconds']:.2f}s;"
        f" the server's first walk: {cold_rate:,.0f}/s, {cold['seconds']:.2f}s)"
    )
    print(f"pull vs floor:    {pull['seconds'] / floor['seconds']:10.2f}x the floor's time")
    per_customer = naive["queries"] / max(naive["customers"], 1)
    print(
        f"naive loop:       {naive_rate:10,.0f} customers/s"
        f"  (first {naive['customers']:,} customers, {per_customer:.1f} queries/customer)"
    )
    print(f"pull vs naive:    {rate / naive_rate:10.1f}x faster")
    print(f"queries per page: {pull['queries'] / pull['pages']:10.2f}  ({pull['pages']} pages)")
    print(f"peak RSS (pull):  {pull['peak_rss_mb']:10.1f} MB")
    print(
        f"unchanged pull:   {repull['customer_rows_written']:10d} customer rows written,"
        f" {repull['seconds']:.1f}s, {repull['queries'] / repull['pages']:.2f} queries/page"
    )
    sys.stdout.flush()
    return pull["peak_rss_mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://polar:polar@127.0.0.1:5432/polar_bench"
        ),
        help="PostgreSQL URL ('' to skip)",
    )
    parser.add_argument("--naive-limit", type=int, default=10_000, help="naive loop: first N")
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the server adds to each answer (Polar's network: ~0.1-0.3)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.db, args.limit)))
        return
    tmp = tempfile.mkdtemp(prefix="bench_pull_")
    dbs = [("SQLite", f"sqlite:///{tmp}/bench.sqlite3")]
    if args.postgres:
        dbs.append(("PostgreSQL", args.postgres))
    for db_name, db in dbs:
        rss = {}
        for size in args.sizes:
            rss[size] = bench(size, db_name, db, args.naive_limit, args.latency)
        if len(rss) > 1:
            small, large = min(rss), max(rss)
            print(
                f"\npeak RSS {large:,} vs {small:,} on {db_name}: "
                f"{(rss[large] / rss[small] - 1) * 100:+.1f}%"
            )


if __name__ == "__main__":
    main()
