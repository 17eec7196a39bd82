"""Every write to an outbox row: the transitions of the table in :mod:`polar_sync.services.push`.

A drain completes or releases a row only if it still holds the ``revision`` it pushed,
so a change made while the push was in flight is never lost; it claims a row with a
lease (``locked_until``), never holding a database lock while it talks to Polar.
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


def write(
    *, external_id: str, user_id: str | None, action: str, payload: Any, delete_first: bool
) -> None:
    """(none | pending | failed) -> pending: create or overwrite the user's row in one
    query, with a fresh start. The lease stays; so does a waiting "delete the old
    customer first" under an upsert with ``delete_first=False``."""
    now = timezone.now()
    change = {
        "user_id": user_id,
        "action": action,
        "payload": payload,
        "status": PushOutbox.Status.PENDING,
        "attempts": 0,
        "last_error": "",
        "next_attempt_at": now,
        "revision": uuid.uuid4(),
        "updated_at": now,
    }
    if delete_first or action == PushOutbox.Action.DELETE:
        change["delete_first"] = delete_first
    features = connections[router.db_for_write(PushOutbox)].features
    PushOutbox.objects.bulk_create(
        [PushOutbox(external_id=external_id, created_at=now, **change)],
        update_conflicts=True,
        # MySQL's ON DUPLICATE KEY takes no target; the key is the only unique column.
        unique_fields=["external_id"] if features.supports_update_conflicts_with_target else None,
        update_fields=list(change),
    )


def retry_failed(*, external_id: str | None = None) -> None:
    """failed -> pending, due now (``polar_push --retry-failed``, the admin's retry)."""
    failed = PushOutbox.objects.filter(status=PushOutbox.Status.FAILED)
    if external_id is not None:
        failed = failed.filter(external_id=external_id)
    now = timezone.now()
    failed.update(status=PushOutbox.Status.PENDING, attempts=0, next_attempt_at=now, updated_at=now)


def claim(*, row: PushOutbox) -> bool:
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


def delete_first_done(*, row: PushOutbox) -> None:
    # Only this revision's: a newer change of owner must delete what this push creates.
    PushOutbox.objects.filter(pk=row.pk, revision=row.revision).update(delete_first=False)


def complete(*, row: PushOutbox) -> bool:
    """leased -> none; or, if the user changed meanwhile, -> pending (True: push again)."""
    removed, _ = PushOutbox.objects.filter(pk=row.pk, revision=row.revision).delete()
    if not removed:
        PushOutbox.objects.filter(pk=row.pk).update(locked_until=None)
    return not removed


def release(*, row: PushOutbox, exc: BaseException, delay: float, failed: bool) -> None:
    """leased -> pending after ``delay``, or -> failed; a row changed meanwhile is only
    unleased (it keeps its fresh start)."""
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
