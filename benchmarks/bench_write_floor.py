"""How long the database alone takes to store what a pull stores, next to the fetch floor.

    .venv/bin/python benchmarks/bench_write_floor.py [--customers 10000] [--postgres URL]

The pull target "within 1.5x of the fetch-and-decode floor" asks the whole pull
(fetch, decode, map, write, commit) to finish in 1.5x the time of the fetch and
decode alone. This prints the two halves of that budget on this machine:

- fetch+decode: walking the local Polar server (warm, as a pull sees it), as
  ``bench_pull.py`` measures its floor;
- write only: the same customers, already mapped and prepared, inserted with
  the bare driver (no Django, no mapping, no HTTP) into the mirror's real table
  (created by ``migrate``: its indexes and checks), one statement and one
  commit per page of 100, the way the pull writes. SQLite runs with the demo
  project's pragmas (WAL, synchronous=NORMAL, foreign keys on); PostgreSQL
  gets each page as one ``json_populate_recordset`` parameter.

When "write only" alone is more than half the fetch floor, no pull that writes
after fetching, in one process of this machine, can meet the 1.5x target.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_pull import TOKEN, start_server  # noqa: E402


def migrate(db: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", "DATABASE_URL": db}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )


def fetch_pages(url: str) -> tuple[list[list[dict]], float]:
    from polar_sync.client import PolarClient

    client = PolarClient(access_token=TOKEN, server=url)
    sum(1 for _ in client.iter_pages(sorting=["created_at"]))  # warm the server's rendering
    started = time.perf_counter()
    pages = [page["items"] for page in client.iter_pages(sorting=["created_at"])]
    return pages, time.perf_counter() - started


def sqlite_write(pages: list[list[dict]]) -> float:
    from django.db import connection

    from polar_sync.mapping import customer_fields
    from polar_sync.models import Customer
    from polar_sync.services.bulk_values import value_preparer
    from polar_sync.services.customers import WRITTEN_FIELDS

    path = Path(tempfile.mkdtemp()) / "write_floor.sqlite3"
    migrate(f"sqlite:///{path}")
    columns = [Customer._meta.get_field(f) for f in WRITTEN_FIELDS]
    prepare = [(c.attname, value_preparer(c, connection)) for c in columns]
    synced = datetime.now(UTC)
    rows = []
    for items in pages:
        fields = [{**customer_fields(c), "synced_at": synced, "user_id": None} for c in items]
        rows.append([[prep(f[a]) for a, prep in prepare] for f in fields])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    names = ", ".join(f'"{c.column}"' for c in columns)
    one = "(" + ", ".join("?" * len(columns)) + ")"
    started = time.perf_counter()
    for page in rows:
        db.execute("BEGIN IMMEDIATE")
        sql = f'INSERT INTO "polar_sync_customer" ({names}) VALUES ' + ", ".join([one] * len(page))
        db.execute(sql, [v for row in page for v in row])
        db.execute("COMMIT")
    return time.perf_counter() - started


def postgres_write(pages: list[list[dict]], url: str) -> float:
    import psycopg

    from polar_sync.mapping import customer_fields
    from polar_sync.services.bulk_values import json_document_value
    from polar_sync.services.customers import WRITTEN_FIELDS

    migrate(url)
    names = ", ".join(f'"{f}"' for f in WRITTEN_FIELDS)  # attname = column for each
    synced = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    documents = [
        json.dumps(
            [{**customer_fields(c), "synced_at": synced, "user_id": None} for c in items],
            default=json_document_value,
        )
        for items in pages
    ]
    with psycopg.connect(url) as db:
        db.execute("TRUNCATE polar_sync_customer CASCADE")
        db.commit()
        sql = (
            f"INSERT INTO polar_sync_customer ({names}) SELECT {names} "
            "FROM json_populate_recordset(NULL::polar_sync_customer, %s::json)"
        )
        started = time.perf_counter()
        for document in documents:
            db.execute(sql, [document])
            db.commit()
        elapsed = time.perf_counter() - started
        db.execute("TRUNCATE polar_sync_customer CASCADE")
        db.commit()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgres://polar:polar@127.0.0.1:5432/polar_bench"
        ),
        help="PostgreSQL URL ('' to skip)",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    server, url = start_server(args.customers)
    try:
        pages, floor = fetch_pages(url)
    finally:
        server.terminate()
        server.wait()
    n = sum(len(items) for items in pages)
    print(f"{n:,} customers, {len(pages)} pages")
    print(f"fetch+decode (warm server):  {floor:6.2f}s   1.5x of it: {1.5 * floor:.2f}s")
    writes = [("SQLite", lambda: sqlite_write(pages))]
    if args.postgres:
        writes.append(("PostgreSQL", lambda: postgres_write(pages, args.postgres)))
    for name, write in writes:
        elapsed = write()
        print(
            f"write only, {name + ':':12s} {elapsed:6.2f}s   = {elapsed / floor:.2f}x the floor;"
            f" fetch + write in sequence: {(floor + elapsed) / floor:.2f}x"
        )


if __name__ == "__main__":
    main()
