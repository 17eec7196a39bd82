"""Helpers shared by the push tests (tests/test_push*.py) and benchmarks/bench_push.py."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model

_seq = itertools.count(1)


def make_user(**fields: Any) -> Any:
    """A saved user (through ``save()``, so the receivers run)."""
    n = next(_seq)
    fields.setdefault("username", f"user{n}")
    fields.setdefault("email", f"user{n}@example.com")
    fields.setdefault("first_name", "Ada")
    fields.setdefault("last_name", f"Lovelace{n}")
    return get_user_model().objects.create_user(password="pw", **fields)


def polar_customer(server: Any, external_id: Any) -> dict[str, Any] | None:
    """The live customer the local Polar server holds for this external ID, if any."""
    return server.store.get_customer_by_external_id(str(external_id))


def push_requests(server: Any) -> int:
    """Requests that change customers (what a push spends): create, update, delete."""
    counts = server.store.request_counts
    return sum(
        counts[op]
        for op in (
            "customers:create",
            "customers:update",
            "customers:update_external",
            "customers:delete",
            "customers:delete_external",
        )
    )


class RecordingBroker:
    """Stands in for ``current_app.send_task``: records what would reach the broker."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def __call__(self, name: str, args: Any = None, **options: Any) -> None:
        self.sent.append({"name": name, "args": list(args or []), **options})

    def run_all(self) -> None:
        """Run the recorded tasks in order, as a worker would once they are due."""
        from polar_sync import tasks

        sent, self.sent = self.sent, []
        for message in sent:
            task = {
                "polar_sync.push_user": tasks.push_user,
                "polar_sync.drain_outbox": tasks.drain_outbox,
            }
            task[message["name"]](*message["args"])


@contextlib.contextmanager
def hung_tcp_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung broker)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in accepted:
            conn.close()
        listener.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
