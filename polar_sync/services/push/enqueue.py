"""After a user change commits: have its row drained, through the broker or in-process.

Nothing here fails the request that saved the user: a row whose enqueue was lost
waits for the periodic drain (``polar_sync.drain_outbox``) or ``polar_push``.
"""

from __future__ import annotations

import logging
import threading

from django.db import router, transaction

from ...models import PushOutbox
from ..broker import broker_connection, broker_send, tasks_run_inline
from .drain import outbox_drain

logger = logging.getLogger("polar_sync.push")

# Seconds a queued push waits before running, so that a burst of saves of one user
# (a sign-up flow, an admin clicking "save" twice) reaches Polar as one request.
PUSH_DELAY = 1.0
# Above this many users in one transaction, one drain task replaces per-user tasks.
BULK_ENQUEUE = 100

_pending = threading.local()


def drain_on_commit(external_id: str) -> None:
    """Have this user's row drained once the current transaction commits.

    Every change registers a callback (one alone would be lost with a rolled-back
    savepoint); the first to run takes the thread's whole set, so ten saves of one
    user in a transaction send one task.
    """
    ids: set[str] = _pending.__dict__.setdefault("ids", set())
    ids.add(external_id)
    transaction.on_commit(_flush, using=router.db_for_write(PushOutbox))


def _flush() -> None:
    ids: set[str] = _pending.__dict__.pop("ids", set())
    if not ids:
        return
    try:
        outbox_enqueue(external_ids=sorted(ids))
    except Exception:
        # Never fail the request that saved the user: the rows are committed.
        logger.exception("polar_sync: could not start the push; the periodic drain will")


def outbox_enqueue(*, external_ids: list[str]) -> None:
    bulk = len(external_ids) > BULK_ENQUEUE
    if tasks_run_inline():
        # The first transient failure ends it: the other rows wait rather than each
        # making the request wait on a Polar that is down.
        for external_id in [None] if bulk else external_ids:
            result = outbox_drain(external_id=external_id, inline=True)
            if result.postponed or result.stopped:
                return
        return
    try:
        # A broker that is down or hung costs at most ENQUEUE_TIMEOUT, once.
        with broker_connection() as connection:
            if bulk:
                broker_send("polar_sync.drain_outbox", args=[], connection=connection)
                return
            for external_id in external_ids:
                broker_send(
                    "polar_sync.push_user",
                    args=[external_id],
                    countdown=PUSH_DELAY,
                    connection=connection,
                )
    except Exception as exc:
        logger.warning(
            "polar_sync: the broker is unavailable (%s: %s); %d push(es) wait in the "
            "outbox for the periodic drain",
            type(exc).__name__,
            exc,
            len(external_ids),
        )
