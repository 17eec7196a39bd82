"""Pushing local users to Polar, part 1: from a user change to an outbox row and a task.

The receivers call :func:`user_change_record` / :func:`user_deletion_record` inside
the user's transaction. They write (or coalesce into) the user's
:class:`~polar_sync.models.PushOutbox` row only when the Polar payload changed, and
arrange for the row to be drained once the transaction commits: through the broker
with a short timeout and no retry loop, or in-process when Celery runs eagerly (no
broker). Nothing here ever fails the user's request because of Polar or the broker:
a row whose enqueue was lost waits for the periodic drain.

Part 2, the drain itself, is in :mod:`polar_sync.services.push_drain`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from ..client import PolarClient
from ..conf import PolarSyncSettings, polar_settings
from ..exceptions import PolarConfigurationError
from ..mapping import payload_held_by, user_external_id
from ..models import Customer, PushedPayload, PushOutbox
from ..models.outbox import CHANGE_FIELDS
from ..selectors import outbox_counts, outbox_failures  # re-exported for the command
from .broker import broker_connection, broker_send, tasks_run_inline
from .customers import users_by_external_id
from .push_drain import DrainResult, inline_client, outbox_drain
from .user_snapshot import user_as_saved, user_snapshot_compare, user_snapshot_written

logger = logging.getLogger("polar_sync.push")

JSON = dict[str, Any]

# Seconds a queued push waits before running, so that a burst of saves of one user
# (a sign-up flow, an admin clicking "save" twice) reaches Polar as one request.
PUSH_DELAY = 1.0
# Above this many users in one transaction, one drain task replaces per-user tasks.
BULK_ENQUEUE = 100

__all__ = [
    "BULK_ENQUEUE",
    "PUSH_DELAY",
    "DrainResult",
    "customer_push",
    "outbox_counts",
    "outbox_drain",
    "outbox_enqueue",
    "outbox_failures",
    "outbox_row_write",
    "outbox_upsert_record",
    "upsert_needed",
    "user_change_record",
    "user_deletion_record",
]


# ---------------------------------------------------------------------------
# recording (inside the user's transaction)


def user_change_record(
    *, user: Any, created: bool = False, update_fields: Iterable[str] | None = None
) -> bool:
    """Record a saved user's Polar payload if it changed; True when a row was written.

    What it costs the save: nothing when ``update_fields`` leaves every watched
    field out (a login); one query when the instance shows that they changed since
    it was loaded (:mod:`.user_snapshot`) or the user is new (the outbox upsert,
    which also coalesces with a waiting row); otherwise the payload is first
    compared with what waits and what was last pushed (a read, then the upsert if
    they differ). The row is drained after the transaction commits. A user that
    ``USER_FILTER`` excludes is not pushed, and an upsert of theirs still waiting
    is dropped.
    """
    conf = polar_settings()
    if not conf.PUSH_ENABLED:
        return False
    seen = user_snapshot_compare(user=user, conf=conf, update_fields=update_fields)
    if seen.changed is False:
        return False
    saved = user_as_saved(user=user, conf=conf, update_fields=update_fields)
    if seen.values is not None:
        user_snapshot_written(user=user, row=saved, conf=conf)
    external_id = user_external_id(saved, conf.USER_EXTERNAL_ID_FIELD)
    if not user_is_mirrored(user=saved, conf=conf):
        if _upsert_dropped(external_id=external_id, user_id=str(user.pk)):
            _drain_on_commit(external_id)
        return False
    payload = user_payload_build(user=saved, conf=conf)
    written = None
    if seen.changed or created:
        # What was last pushed is not read here: the drain skips a payload Polar has.
        written = PushOutbox.objects.change_record(
            external_id=external_id, user_id=str(user.pk), payload=payload
        )
    if written is None:
        written = _compare_and_write(external_id=external_id, user=user, payload=payload)
    if written:
        _drain_on_commit(external_id)
    return written


def _upsert_dropped(*, external_id: str, user_id: str) -> bool:
    """Drop the waiting upsert of a user the filter now excludes. One that replaced a
    delete (the ID changed hands) still owes that delete: it becomes the delete, and
    True says it is to be drained."""
    upserts = PushOutbox.objects.filter(external_id=external_id, action=PushOutbox.Action.UPSERT)
    waiting = list(upserts.values_list("delete_first", flat=True))  # none, usually
    if not waiting:
        return False
    if not waiting[0]:
        upserts.delete()
        return False
    _delete_record(external_id=external_id, user_id=user_id)
    return True


def _delete_record(*, external_id: str, user_id: str | None) -> None:
    """Queue the delete of the customer with this external ID (it supersedes an upsert)."""
    outbox_row_write(
        external_id=external_id,
        user_id=user_id,
        action=PushOutbox.Action.DELETE,
        payload={},
        delete_first=False,
    )


def user_deletion_record(*, user: Any) -> bool:
    """Record that a deleted user's customer must be deleted; True when a row was written.

    The delete supersedes an upsert still waiting, so only the delete reaches Polar.
    """
    conf = polar_settings()
    if not (conf.PUSH_ENABLED and conf.DELETE_CUSTOMER_ON_USER_DELETE):
        return False
    external_id = user_external_id(user, conf.USER_EXTERNAL_ID_FIELD)
    # A user the filter excludes now may have been pushed while it included them.
    if not user_is_mirrored(user=user, conf=conf) and not _has_trace(external_id=external_id):
        return False
    _delete_record(external_id=external_id, user_id=str(user.pk))
    _drain_on_commit(external_id)
    return True


def user_is_mirrored(*, user: Any, conf: PolarSyncSettings | None = None) -> bool:
    """Whether ``USER_FILTER`` (a dotted path of ``f(user) -> bool``) lets the user through."""
    conf = conf or polar_settings()
    if not conf.USER_FILTER:
        return True
    return bool(_import(conf.USER_FILTER, "USER_FILTER")(user))


def user_payload_build(*, user: Any, conf: PolarSyncSettings | None = None) -> JSON:
    """The user's Polar payload from ``USER_PAYLOAD``, checked to be a JSON object."""
    conf = conf or polar_settings()
    payload = _import(conf.USER_PAYLOAD, "USER_PAYLOAD")(user)
    if not isinstance(payload, dict):
        raise TypeError(
            f"POLAR_SYNC['USER_PAYLOAD'] ({conf.USER_PAYLOAD}) returned "
            f"{type(payload).__name__}; it must return a dict such as "
            "{'email': ..., 'name': ...}."
        )
    # The external ID is the row's key and is sent only on create.
    return {key: value for key, value in payload.items() if key != "external_id"}


@functools.lru_cache(maxsize=32)  # looked up inside every user save that changes
def _import(path: str, setting: str) -> Callable[[Any], Any]:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImportError(f"POLAR_SYNC['{setting}'] = {path!r} cannot be imported: {exc}") from exc


def _compare_and_write(*, external_id: str, user: Any, payload: JSON) -> bool:
    """Write the upsert unless it waits already or Polar has the payload (as we know)."""
    queued, pushed = PushOutbox.objects.waiting_and_pushed(external_id)
    raw = _mirrored_raw(external_id) if queued is None and pushed is None else None
    if not upsert_needed(payload=payload, waiting=queued, pushed=pushed, mirrored=raw):
        return False
    return outbox_upsert_record(
        external_id=external_id,
        user_id=str(user.pk),
        payload=payload,
        waiting_action=queued[0] if queued is not None else None,
    )


def outbox_upsert_record(
    *, external_id: str, user_id: str, payload: JSON, waiting_action: str | None
) -> bool:
    """Queue an upsert: the one-query coalescing write, or, on a database without
    ``ON CONFLICT``, the ORM's write given the action of the row that waits (if any)."""
    written = PushOutbox.objects.change_record(
        external_id=external_id, user_id=user_id, payload=payload
    )
    if written is not None:
        return written
    outbox_row_write(
        external_id=external_id,
        user_id=user_id,
        action=PushOutbox.Action.UPSERT,
        payload=payload,
        delete_first=waiting_action == PushOutbox.Action.DELETE,
    )
    return True


def upsert_needed(
    *,
    payload: JSON,
    waiting: tuple[str, Any] | None,
    pushed: JSON | None,
    mirrored: JSON | None,
) -> bool:
    """Whether queueing an upsert of ``payload`` changes what Polar ends up with.

    What waits (action, payload) is what will reach Polar: compare with that; an
    identical upsert waiting, or failed (it would fail again), needs nothing. Else
    what was last pushed; failing that (a user never pushed from here), the mirror's
    raw copy of the customer, so that users Polar already holds as they are (from
    before polar_sync was installed) are not pushed again.
    """
    if waiting is not None:
        return waiting != (PushOutbox.Action.UPSERT, payload)
    if pushed is not None:
        return pushed != payload
    return not payload_held_by(mirrored, payload)


def _mirrored_raw(external_id: str) -> JSON | None:
    return (
        Customer.objects.filter(external_id=external_id, deleted_at__isnull=True)
        .values_list("raw", flat=True)
        .first()
    )


def _has_trace(*, external_id: str) -> bool:
    return (
        PushOutbox.objects.filter(external_id=external_id).exists()
        or PushedPayload.objects.filter(external_id=external_id).exists()
        or Customer.objects.filter(external_id=external_id, deleted_at__isnull=True).exists()
    )


def outbox_row_write(
    *, external_id: str, user_id: str | None, action: str, payload: JSON, delete_first: bool
) -> None:
    """Create the user's row or coalesce into it, in one upsert query.

    A fresh change gets a fresh start (pending, no attempts, due now). An upsert
    keeps a pending "delete the old customer first"; a delete clears it.
    """
    now = timezone.now()
    row = PushOutbox(
        external_id=external_id,
        user_id=user_id,
        action=action,
        payload=payload,
        status=PushOutbox.Status.PENDING,
        attempts=0,
        last_error="",
        next_attempt_at=now,
        revision=uuid.uuid4(),
        delete_first=delete_first,
        created_at=now,
        updated_at=now,
    )
    keeps_delete_first = action == PushOutbox.Action.UPSERT and not delete_first
    update_fields = [*CHANGE_FIELDS] if keeps_delete_first else [*CHANGE_FIELDS, "delete_first"]
    PushOutbox.objects.upsert(row, update_fields)


# ---------------------------------------------------------------------------
# after commit: enqueue, or drain in-process

_pending = threading.local()


def _drain_on_commit(external_id: str) -> None:
    # One callback per transaction would be lost with a rolled-back savepoint, so
    # every change registers one; the first to run takes the whole set.
    ids: set[str] | None = getattr(_pending, "ids", None)
    if ids is None:
        ids = _pending.ids = set()
    ids.add(external_id)
    transaction.on_commit(_flush, using=router.db_for_write(PushOutbox))


def _flush() -> None:
    ids: set[str] = getattr(_pending, "ids", None) or set()
    if not ids:
        return
    _pending.ids = set()
    try:
        outbox_enqueue(external_ids=sorted(ids))
    except Exception:
        # Never fail the request that saved the user: the rows are committed.
        logger.exception("polar_sync: could not start the push; the periodic drain will")


def outbox_enqueue(*, external_ids: Iterable[str]) -> None:
    """Have these users' rows drained: via the broker, or in-process when Celery runs
    tasks eagerly or has no broker configured (it would otherwise try amqp://localhost
    after every commit)."""
    ids = list(external_ids)
    if not ids:
        return
    if tasks_run_inline():
        _drain_inline(ids)
        return
    _broker_send(ids)


# After a transient failure of an in-process push, the pushes of the next
# INLINE_PAUSE seconds are left in the outbox: while Polar is down, each request
# that saves a user would otherwise wait for Polar's timeout.
INLINE_PAUSE = 30.0
_inline_failed: tuple[str, float] | None = None  # (server URL, time.monotonic() of the failure)


def _drain_inline(ids: list[str]) -> None:
    """No broker (the embedded default): push now, once, without retry sleeps."""
    global _inline_failed
    conf = polar_settings()
    failed = _inline_failed
    if failed and failed[0] == conf.SERVER and time.monotonic() < failed[1] + INLINE_PAUSE:
        logger.info("polar_sync: Polar failed moments ago; %d push(es) wait", len(ids))
        return
    try:
        client = inline_client()
    except PolarConfigurationError as exc:
        logger.warning("polar_sync: cannot push (%s); the changes wait in the outbox", exc)
        return
    for external_id in [None] if len(ids) > BULK_ENQUEUE else ids:
        result = outbox_drain(external_id=external_id, client=client)
        if result.postponed:
            _inline_failed = (conf.SERVER, time.monotonic())
            return


def _broker_send(external_ids: list[str]) -> None:
    try:
        with broker_connection() as connection:
            if len(external_ids) > BULK_ENQUEUE:
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


# ---------------------------------------------------------------------------
# on demand


def customer_push(*, external_id: str, client: PolarClient | None = None) -> DrainResult:
    """Push one local user to Polar now, whatever was pushed before.

    Creates or updates the customer from the user with this external ID. Without such a
    user it pushes nothing and says so in ``stopped``: deleting a live Polar customer
    (which cancels its subscriptions) is a deliberate act, not the side effect of a typo
    (:func:`~polar_sync.services.remote.customer_delete_in_polar`).
    """
    conf = polar_settings()
    result = DrainResult()
    if not conf.PUSH_ENABLED:
        result.stopped = "pushing is disabled (POLAR_SYNC['PUSH_ENABLED'] is False)"
        return result
    pk = users_by_external_id([external_id]).get(external_id)
    user = get_user_model()._default_manager.filter(pk=pk).first() if pk is not None else None
    if user is None:
        result.stopped = f"no local user has external ID {external_id!r}: nothing to push"
        if PushOutbox.objects.filter(
            external_id=external_id, action=PushOutbox.Action.DELETE
        ).exists():
            result.stopped += (
                "; the deletion queued when the user was deleted is pushed by the "
                "outbox drain (polar_push, with --retry-failed if Polar refused it)"
            )
        return result
    if not user_is_mirrored(user=user, conf=conf):
        result.stopped = f"USER_FILTER excludes user {external_id}"
        return result
    with transaction.atomic():
        # Whatever was pushed before: the drain must not skip it as known to Polar.
        PushedPayload.objects.filter(external_id=external_id).delete()
        queued = PushOutbox.objects.filter(external_id=external_id).values_list("action", flat=True)
        outbox_row_write(
            external_id=external_id,
            user_id=str(user.pk),
            action=PushOutbox.Action.UPSERT,
            payload=user_payload_build(user=user, conf=conf),
            delete_first=PushOutbox.Action.DELETE in queued,
        )
    return outbox_drain(external_id=external_id, retry_failed=True, force=True, client=client)
