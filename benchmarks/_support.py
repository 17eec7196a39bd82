"""What several benchmarks share: a local Polar server in its own process, and a
scratch database for a benchmark that runs Django in its own process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_polar_server(
    *, customers: int, latency: float = 0.0, token: str
) -> tuple[subprocess.Popen, str]:
    """``manage.py polar_server`` on a free port; returns the process and its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "manage.py", "polar_server", "--port", str(port)]
    command += ["--customers", str(customers), "--token", token, "--latency", str(latency)]
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings"},
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the local Polar server did not start")


def scratch_database(*, postgres: str | None, stem: str) -> tuple[str, Callable[[], None]]:
    """Point ``DATABASE_URL`` at a new, empty database (a PostgreSQL one created on the
    server of ``postgres``, else a temporary SQLite file); returns (label, cleanup)."""
    if not postgres:
        path = Path(tempfile.mkdtemp()) / f"{stem}.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        return f"SQLite ({path})", lambda: None
    import psycopg

    name = f"polar_sync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{postgres.rsplit('/', 1)[0]}/{name}"

    def cleanup() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"PostgreSQL (scratch database {name})", cleanup
