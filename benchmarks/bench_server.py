"""How fast is the local Polar server? Seeding, and pages served to one client.

    .venv/bin/python benchmarks/bench_server.py [--customers 1000000] [--pages 2000]

Prints: the time to seed the customers and the peak memory, then pages per second
(``limit=100``, sorted by ``created_at``) over one keep-alive connection with the standard
library's http.client (cold: JSON rendered on first use; warm: cached), then the same walk
with polar_sync's PolarClient when it is importable, then the cost of a sort by email.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import resource
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from polar_sync.testing import LocalPolarServer


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def walk_http_client(
    server: LocalPolarServer | SimpleNamespace, pages: int, sorting: str = "created_at"
) -> float:
    """Pages per second over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port)
    headers = {"Authorization": f"Bearer {server.token}"}
    started = time.perf_counter()
    for page in range(1, pages + 1):
        connection.request(
            "GET", f"/v1/customers/?limit=100&sorting={sorting}&page={page}", headers=headers
        )
        response = connection.getresponse()
        body = json.loads(response.read())
        if response.status != 200 or len(body["items"]) != 100:
            raise SystemExit(f"unexpected answer on page {page}: {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return pages / elapsed


def walk_polar_client(server: LocalPolarServer, pages: int) -> float | str:
    try:
        from polar_sync.client import PolarClient
    except Exception as exc:  # the client is optional for this benchmark
        return f"skipped: polar_sync.client cannot be imported ({type(exc).__name__}: {exc})"
    with PolarClient(access_token=server.token, server=server.url) as client:
        started = time.perf_counter()
        for page in range(1, pages + 1):
            result = client.list(page=page, limit=100, sorting=["created_at"])
            if len(result["items"]) != 100:
                raise SystemExit(f"unexpected answer on page {page}")
        return pages / (time.perf_counter() - started)


def _serve_in_child(server: LocalPolarServer, channel: Connection) -> None:
    server.port = 0
    server.start()
    channel.send(server.port)
    channel.recv()  # until the parent is done
    server.stop()


def walk_other_process(server: LocalPolarServer, pages: int) -> float:
    """The same walk with the server in its own (forked, already seeded) process, as with
    ``manage.py polar_server``: client and server no longer share one interpreter lock."""
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve_in_child, args=(server, child)
    )
    process.start()
    remote = SimpleNamespace(port=parent.recv(), token=server.token)
    try:
        walk_http_client(remote, pages)  # cold, in the child
        return walk_http_client(remote, pages)
    finally:
        parent.send("stop")
        process.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=2000, help="pages of 100 per walk")
    args = parser.parse_args()
    pages = min(args.pages, args.customers // 100)

    started = time.perf_counter()
    server = LocalPolarServer(customers=args.customers, seed=0)
    seeded = time.perf_counter() - started
    print(f"seed {args.customers:,} customers: {seeded:.1f} s (peak RSS {peak_rss_mb():,.0f} MB)")

    with server:
        cold = walk_http_client(server, pages)
        warm = walk_http_client(server, pages)
        print(f"http.client keep-alive, limit=100 sorting=created_at, {pages} pages:")
        print(f"  cold (first rendering): {cold:,.0f} pages/s = {cold * 100:,.0f} customers/s")
        print(f"  warm (cached JSON):     {warm:,.0f} pages/s = {warm * 100:,.0f} customers/s")
        result = walk_polar_client(server, pages)
        if isinstance(result, str):
            print(f"PolarClient: {result}")
        else:
            print(f"PolarClient.list, limit=100 sorting=created_at: {result:,.0f} pages/s")
        started = time.perf_counter()
        walk_http_client(server, 1, sorting="email")
        first = time.perf_counter() - started
        following = walk_http_client(server, min(pages, 200), sorting="email")
        print(
            f"sorting=email over {args.customers:,}: first page {first:.2f} s, "
            f"then {following:,.0f} pages/s (sorted order cached until the next change)"
        )
    other = walk_other_process(server, pages)
    print(f"server in its own process, http.client keep-alive, warm: {other:,.0f} pages/s")
    print(f"peak RSS at the end: {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
