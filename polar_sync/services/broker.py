"""Where work queued after a commit runs: through the Celery broker, or in this process.

One decision for every kind of work (pushes, webhook processing): with no broker
configured, or Celery running tasks eagerly, the work runs in-process after commit;
otherwise it is sent to the broker over a connection of our own with short timeouts,
so that a broker that is down or hung costs at most ``ENQUEUE_TIMEOUT``, once, and
the periodic task (drain, sweep) picks the work up later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import current_app

from ..conf import polar_settings

# No retry loop (the periodic task is the retry) and no result backend round trip.
SEND_OPTIONS: dict[str, Any] = {"retry": False, "ignore_result": True}


def tasks_run_inline() -> bool:
    """Whether queued work runs in this process: Celery runs tasks eagerly, or has no
    broker configured (it would otherwise try amqp://localhost after every commit)."""
    conf = current_app.conf
    return bool(conf.task_always_eager or not (conf.broker_write_url or conf.broker_url))


@contextlib.contextmanager
def broker_connection() -> Iterator[Any]:
    """A broker connection whose connect and socket timeouts are ``ENQUEUE_TIMEOUT``."""
    timeout = polar_settings().ENQUEUE_TIMEOUT
    # Our own connection, so the timeouts are ours and not the host project's.
    with current_app.connection_for_write(
        connect_timeout=timeout,
        transport_options={
            "max_retries": 0,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
    ) as connection:
        yield connection


def broker_send(name: str, *, args: list[Any], connection: Any, **options: Any) -> None:
    """Send one task by name (no import of tasks.py: services never import their doors)."""
    current_app.send_task(name, args=args, connection=connection, **SEND_OPTIONS, **options)
