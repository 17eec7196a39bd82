"""Where work queued after a commit runs (pushes, webhook processing): in this process
when Celery has no broker or runs tasks eagerly; else sent to the broker with short
timeouts, so a broker that is down costs at most ``ENQUEUE_TIMEOUT``, once, and the
periodic task (drain, sweep) picks the work up later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from celery import current_app

from ..conf import polar_settings


def tasks_run_inline() -> bool:
    # With no broker configured Celery would try amqp://localhost after every commit.
    conf = current_app.conf
    return bool(conf.task_always_eager or not (conf.broker_write_url or conf.broker_url))


@contextlib.contextmanager
def broker_connection() -> Iterator[Any]:
    """Our own broker connection, with ``ENQUEUE_TIMEOUT`` (not the project's timeouts)."""
    timeout = polar_settings().ENQUEUE_TIMEOUT
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
    """Send a task by name (services never import their doors, tasks.py): no retry loop
    (the periodic task is the retry) and no result backend round trip."""
    current_app.send_task(
        name, args=args, connection=connection, retry=False, ignore_result=True, **options
    )
