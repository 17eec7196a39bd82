"""How long a killed pull blocks the next one: ``kill -9``, then pull until one starts.

    .venv/bin/python benchmarks/bench_crash.py [--customers 20000] [--latency 0.3]

Starts the local Polar server (in its own process, with ``--latency`` added to
each answer so that a pull lasts minutes), migrates a temporary SQLite
database, starts ``manage.py polar_sync`` and, once it has written a few pages,
kills it with SIGKILL: it leaves its ``running`` SyncRun row, the lock, behind.
Then it runs ``manage.py polar_sync`` again and again (each one a fresh
process, as cron or a Celery beat would) until one does not exit with
"another run is in progress", and prints the time from the kill to that
pull's ``started_at``, with the settings that decide it. The settings are
the demo project's, so ``LOCK_TIMEOUT`` is polar_sync's default.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from _support import ROOT, start_polar_server

TOKEN = "bench-token"


def runs(db_path: Path) -> list[tuple[int, str, str, int]]:
    """(id, status, started_at, pages) of every customers run, oldest first."""
    with sqlite3.connect(db_path, timeout=20) as db:
        return db.execute(
            "SELECT id, status, started_at, pages FROM polar_sync_syncrun "
            "WHERE kind = 'customers' ORDER BY id"
        ).fetchall()


def as_epoch(stored: str) -> float:
    """A DateTimeField as Django stores it in SQLite (UTC, no offset) -> time.time()."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp()


def attempt(pull: list[str], env: dict[str, str], db_path: Path, after_id: int) -> float | None:
    """Run one pull: the ``started_at`` of its run, or None when it was refused."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(pull, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            newer = [row for row in runs(db_path) if row[0] > after_id]
            if newer:  # it holds the lock: that is all this measures
                proc.kill()
                proc.wait()
                return as_epoch(newer[0][2])
            if proc.poll() is not None:
                out.seek(0)
                output = out.read()
                if "another run is in progress" not in output:
                    raise SystemExit(f"an attempt failed otherwise:\n{output}")
                return None
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.3, help="seconds added per answer")
    parser.add_argument("--kill-after-pages", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between attempts")
    parser.add_argument("--give-up", type=float, default=900.0, help="seconds")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_crash_"))
    db_path = tmp / "crash.sqlite3"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DATABASE_URL": f"sqlite:///{db_path}",
        "POLAR_ACCESS_TOKEN": TOKEN,
        "DJANGO_DEBUG": "0",
    }
    # Production's default budget (a loopback server would otherwise get none).
    env["POLAR_RATE_LIMIT"] = "400"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    server, url = start_polar_server(customers=args.customers, latency=args.latency, token=TOKEN)
    env["POLAR_SERVER"] = url
    pull = [sys.executable, "manage.py", "polar_sync"]
    try:
        victim = subprocess.Popen(
            pull, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.time() + 300
        while time.time() < deadline:
            rows = runs(db_path)
            if rows and rows[-1][3] >= args.kill_after_pages:
                break
            if victim.poll() is not None:
                raise SystemExit("the first pull ended before it could be killed")
            time.sleep(0.2)
        else:
            raise SystemExit("the first pull wrote no pages")
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.wait()
        killed_id, status, _started, pages = runs(db_path)[-1]
        print(f"killed pull {killed_id} (kill -9) after {pages} pages; its row says {status!r}")

        refused, started = 0, None
        while started is None and time.time() - killed_at < args.give_up:
            started = attempt(pull, env, db_path, killed_id)
            if started is None:
                refused += 1
                time.sleep(args.poll)
        if started is None:
            raise SystemExit(f"no pull started within {args.give_up:.0f}s of the kill")
        killed_row = next(row for row in runs(db_path) if row[0] == killed_id)
        from_settings = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from polar_sync.conf import polar_settings; "
                "c = polar_settings(); print(c.LOCK_TIMEOUT, c.TIMEOUT)",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        lock_timeout, timeout = from_settings.stdout.split()
    finally:
        server.terminate()
        server.wait()
    print(
        f"{refused} pulls refused ('another run is in progress'); the next one started and "
        f"marked the killed run {killed_row[1]!r}"
    )
    print(f"LOCK_TIMEOUT {float(lock_timeout):g}s, TIMEOUT {float(timeout):g}s")
    print(f"kill -9 -> next pull started: {started - killed_at:.1f}s")


if __name__ == "__main__":
    main()
