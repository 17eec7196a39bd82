"""Every write to an outbox row, in one place: the transitions of the table in
:mod:`polar_sync.services.push`.

Two values keep concurrent writers apart. ``revision`` is new with every change
of the user: a drain completes or releases a row only if it still holds the
revision it pushed, so a change made while the push was in flight is never lost.
``locked_until`` is a lease: a drain claims a row for a while (never holding a
database lock while it talks to Polar), so two workers never push one user at once;
a drain that dies leaves a lease that simply runs out.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from django.db import connections, router
from django.db.models import Q
from django.utils import timezone

from ...conf import polar_settings
from ...models import PushOutbox

BACKOFF_BASE = 5.0  # seconds before the first retry of a row; doubles with each attempt
BACKOFF_MAX = 3600.0

# What a new change overwrites in the user's row (the lease and created_at stay).
CHANGE_FIELDS = (
    "user_id",
    "action",
    "payload",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "revision",
    "updated_at",
)


def row_write(
    *, external_id: str, user_id: str | None, action: str, payload: Any, delete_first: bool
) -> None:
    """(none | pending | failed) -> pending: create the user's row or overwrite it, in
    one query, with a fresh start (no attempts, due now, a new revision).

    An upsert keeps a waiting "delete the old customer first" (``delete_first=False``
    leaves it as it is); a delete clears it.
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
    keeps = action == PushOutbox.Action.UPSERT and not delete_first
    features = connections[router.db_for_write(PushOutbox)].features
    PushOutbox.objects.bulk_create(
        [row],
        update_conflicts=True,
        # MySQL's ON DUPLICATE KEY takes no target; the key is the only unique column.
        unique_fields=["external_id"] if features.supports_update_conflicts_with_target else None,
        update_fields=[*CHANGE_FIELDS] if keeps else [*CHANGE_FIELDS, "delete_first"],
    )


def rows_retry_failed(*, external_id: str | None = None) -> None:
    """failed -> pending, due now (``polar_push --retry-failed``, the admin's retry)."""
    failed = PushOutbox.objects.filter(status=PushOutbox.Status.FAILED)
    if external_id is not None:
        failed = failed.filter(external_id=external_id)
    now = timezone.now()
    failed.update(status=PushOutbox.Status.PENDING, attempts=0, next_attempt_at=now, updated_at=now)


def row_claim(*, row: PushOutbox) -> bool:
    """pending -> leased, if the row still holds ``row``'s revision and nobody holds it."""
    conf = polar_settings()
    now = timezone.now()
    # Long enough for the slowest push: up to five requests, each with its retries.
    lease = conf.TIMEOUT * (conf.MAX_RETRIES + 1) * 5 + conf.BACKOFF_MAX + 60
    claimed = (
        PushOutbox.objects.filter(pk=row.pk, revision=row.revision)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(locked_until=now + timedelta(seconds=lease))
    )
    return claimed == 1


def row_held_elsewhere(*, pk: str) -> tuple[PushOutbox | None, bool]:
    """The row as it is now, and whether another drain's lease holds it."""
    row = PushOutbox.objects.filter(pk=pk).first()
    held = row is not None and row.locked_until is not None and row.locked_until > timezone.now()
    return row, held


def row_delete_first_done(*, row: PushOutbox) -> None:
    """The old customer is deleted: only this revision's flag is cleared, since a newer
    change that took the external ID over again must delete what this push creates."""
    PushOutbox.objects.filter(pk=row.pk, revision=row.revision).update(delete_first=False)


def row_complete(*, row: PushOutbox) -> bool:
    """leased -> none: Polar has this revision. If the user changed meanwhile, the row
    stays, unleased (leased -> pending), and True says it is to be pushed again."""
    removed, _ = PushOutbox.objects.filter(pk=row.pk, revision=row.revision).delete()
    if not removed:
        PushOutbox.objects.filter(pk=row.pk).update(locked_until=None)
    return not removed


def row_release(*, row: PushOutbox, exc: BaseException, delay: float, failed: bool) -> None:
    """leased -> pending after ``delay`` (a transient failure), or -> failed (a refusal),
    with the error kept. A row changed meanwhile keeps its fresh start, only unleased."""
    now = timezone.now()
    updated = PushOutbox.objects.filter(pk=row.pk, revision=row.revision).update(
        status=PushOutbox.Status.FAILED if failed else PushOutbox.Status.PENDING,
        attempts=row.attempts + 1,
        last_error=(str(exc) or type(exc).__name__)[:2000],
        next_attempt_at=now + timedelta(seconds=delay),
        locked_until=None,
        updated_at=now,
    )
    if not updated:
        PushOutbox.objects.filter(pk=row.pk).update(locked_until=None)


def backoff(attempts: int) -> float:
    """Seconds before the next try of a row tried ``attempts`` times (with jitter)."""
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(attempts - 1, 20))
    return random.uniform(delay / 2, delay)  # jitter: rows failed together retry apart
