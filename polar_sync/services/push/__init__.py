"""Pushing local users to Polar through an outbox.

A user change writes (or overwrites) the user's :class:`~polar_sync.models.PushOutbox`
row in the user's own transaction (:mod:`.record`); once it commits, the row is
drained through the broker or in-process (:mod:`.enqueue`, :mod:`.drain`); a
periodic reconcile catches what no save announced (:mod:`.reconcile`). Every write
to a row is in :mod:`.rows`.

An outbox row, one per external ID, holding the latest wish (upsert with the newest
payload, or delete)::

    state      what it means                  event                     next state
    ---------  -----------------------------  ------------------------  ----------------
    (none)     Polar has what we know         a user change             pending
    pending    due at next_attempt_at         a user change             pending (new revision)
               (status "pending")             a drain claims it         leased
    leased     a drain is pushing it          pushed, same revision     (none)
               (pending, locked_until ahead)  pushed, revision changed  pending (pushed again)
                                              transient failure         pending (backoff)
                                              Polar refuses it          failed
                                              the drain dies            pending (lease runs out)
    failed     refused, with Polar's message  a user change             pending
                                              --retry-failed            pending

Nothing is lost: a row leaves only when Polar has the revision it holds. Nothing is
pushed twice at once: a lease, taken by a conditional update, is held by one drain.
"""

from .drain import MAX_CONSECUTIVE_TRANSIENT, DrainResult, outbox_drain, push_client
from .enqueue import BULK_ENQUEUE, PUSH_DELAY
from .reconcile import ReconcileResult, users_reconcile
from .record import (
    customer_push,
    user_change_record,
    user_deletion_record,
    user_field_attname,
    user_fields_watched,
    user_payload_build,
)
from .rows import BACKOFF_BASE, BACKOFF_MAX, backoff

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "BULK_ENQUEUE",
    "MAX_CONSECUTIVE_TRANSIENT",
    "PUSH_DELAY",
    "DrainResult",
    "ReconcileResult",
    "backoff",
    "customer_push",
    "outbox_drain",
    "push_client",
    "user_change_record",
    "user_deletion_record",
    "user_field_attname",
    "user_fields_watched",
    "user_payload_build",
    "users_reconcile",
]
