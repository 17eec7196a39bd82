"""Checkpoints of the customer walk: where a failed pull stopped, for the next one to continue.

One :class:`~polar_sync.models.SyncCheckpoint` per kind, in one of two phases::

    (none)      --a pull starts-------------------------> walking, next_page 1
    walking     --page n written------------------------> walking, next_page n + 1
    walking     --last page written---------------------> confirming, candidates
    confirming  --every candidate confirmed-------------> (none)
    any         --older than PULL_CHECKPOINT_MAX_AGE,
                  or the page size or order changed-----> (none): the next walk starts over

A failed run leaves the checkpoint as it stands. The next run continues one page
before ``next_page``, as customers deleted meanwhile shift later ones back; one it
still misses becomes a candidate, which a GET confirms before any deletion.

The IDs each page held are stored (packed, one row per page read), so the set the
walk saw survives its runs. The candidates are the active customers it did not
see that were already there, unchanged, when it began: one the mirror learnt of
later (a webhook, a push) is never a candidate. Dry runs leave checkpoints alone.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..conf import polar_settings
from ..models import Customer, SyncCheckpoint, SyncCheckpointPage

logger = logging.getLogger("polar_sync.sync")

ID_BYTES = 16


def ids_pack(ids: Iterable[uuid.UUID]) -> bytes:
    return b"".join(pk.bytes for pk in ids)


def ids_split(data: bytes | memoryview) -> list[bytes]:
    """Packed IDs as 16-byte strings (cheaper to compare than UUIDs)."""
    data = bytes(data)
    return [data[i : i + ID_BYTES] for i in range(0, len(data), ID_BYTES)]


def checkpoint_open(
    *, kind: str, page_size: int, sorting: str, now: datetime
) -> tuple[SyncCheckpoint, bool]:
    """The checkpoint to continue (and True), or a new one (and False). Hold the run lock."""
    max_age = timedelta(seconds=polar_settings().PULL_CHECKPOINT_MAX_AGE)
    checkpoint = SyncCheckpoint.objects.filter(kind=kind).first()
    if checkpoint is not None:
        if checkpoint.walk_started_at < now - max_age:
            why = f"its walk started at {checkpoint.walk_started_at:%Y-%m-%d %H:%M:%S}"
        elif (checkpoint.page_size, checkpoint.sorting) != (page_size, sorting):
            why = "the page size or the order changed"
        else:
            return checkpoint, True
        logger.info("dropping the %s pull checkpoint (%s); walking from page 1", kind, why)
        checkpoint.delete()  # its pages go with it
    checkpoint = SyncCheckpoint.objects.create(
        kind=kind, page_size=page_size, sorting=sorting, walk_started_at=now, updated_at=now
    )
    return checkpoint, False


def checkpoint_start_page(checkpoint: SyncCheckpoint) -> int:
    """One before the first page not written yet."""
    return max(1, checkpoint.next_page - 1)


class CheckpointWriter:
    """Adds the pages a walk wrote to its checkpoint, every ``every`` seconds and on
    :meth:`flush`: a commit per page would cost about 10 ms on PostgreSQL. A killed
    worker loses those seconds of pages, which the next run reads again.
    """

    def __init__(self, checkpoint: SyncCheckpoint, every: float = 2.0) -> None:
        self.checkpoint = checkpoint
        self.every = every
        self.pending: list[tuple[int, list[uuid.UUID]]] = []
        self.saved_at = time.monotonic()

    def add(self, *, page: int, ids: list[uuid.UUID]) -> None:
        self.pending.append((page, ids))
        if time.monotonic() - self.saved_at >= self.every:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        checkpoint = self.checkpoint
        rows = [
            SyncCheckpointPage(checkpoint=checkpoint, page=page, ids=ids_pack(ids))
            for page, ids in self.pending
        ]
        with transaction.atomic():
            SyncCheckpointPage.objects.bulk_create(rows)
            checkpoint.next_page = max(checkpoint.next_page, *(r.page + 1 for r in rows))
            checkpoint.updated_at = timezone.now()
            checkpoint.save(update_fields=["next_page", "updated_at"])
        self.pending.clear()
        self.saved_at = time.monotonic()


def checkpoint_walk_done(*, checkpoint: SyncCheckpoint) -> None:
    """The walk is complete: keep, as candidates, the customers it did not see."""
    seen: set[bytes] = set()
    rows = SyncCheckpointPage.objects.filter(checkpoint=checkpoint).values_list("ids", flat=True)
    for packed in rows.iterator(chunk_size=500):
        seen.update(ids_split(packed))
    # Only rows unchanged since the walk began: one written later was alive then.
    before_walk = Customer.objects.active().filter(synced_at__lt=checkpoint.walk_started_at)
    candidates = [
        pk
        for pk in before_walk.values_list("id", flat=True).iterator(chunk_size=5000)
        if pk.bytes not in seen
    ]
    checkpoint.phase = SyncCheckpoint.Phase.CONFIRMING
    checkpoint.candidates = ids_pack(candidates)
    checkpoint.updated_at = timezone.now()
    with transaction.atomic():
        checkpoint.save(update_fields=["phase", "candidates", "updated_at"])
        checkpoint.pages.all().delete()


def checkpoint_candidates(checkpoint: SyncCheckpoint) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=chunk) for chunk in ids_split(checkpoint.candidates)]


def checkpoint_left(checkpoint: SyncCheckpoint) -> str:
    """What a failed run leaves to the next one, for its error message."""
    if checkpoint.pk is None:  # deleted: nothing is left
        return ""
    if checkpoint.phase == SyncCheckpoint.Phase.CONFIRMING:
        left = len(checkpoint.candidates) // ID_BYTES
        return f"; the walk is complete, the next pull confirms the {left} deletions left"
    return f"; the next pull continues the walk at page {checkpoint_start_page(checkpoint)}"


def checkpoint_confirmed(*, checkpoint: SyncCheckpoint, remaining: list[uuid.UUID]) -> None:
    """Keep the candidates still to confirm; with none left, the pull is complete."""
    if not remaining:
        checkpoint.delete()
        return
    checkpoint.candidates = ids_pack(remaining)
    checkpoint.updated_at = timezone.now()
    checkpoint.save(update_fields=["candidates", "updated_at"])
