"""The lifecycle of a :class:`~polar_sync.models.SyncRun`, which is also the lock."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import polar_settings
from ..models import SyncRun

logger = logging.getLogger("polar_sync.sync")


def sync_run_start(*, kind: str, dry_run: bool = False) -> SyncRun | None:
    """Start a run of ``kind``, or return None when one is already running.

    A running row whose heartbeat is older than ``LOCK_TIMEOUT`` belonged to a
    worker that died: it is marked abandoned and the new run goes ahead.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=polar_settings().LOCK_TIMEOUT)
    SyncRun.objects.filter(
        kind=kind, status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale_before
    ).update(
        status=SyncRun.Status.ABANDONED,
        finished_at=now,
        error="the worker stopped sending heartbeats",
    )
    try:
        with transaction.atomic():
            return SyncRun.objects.create(
                kind=kind, started_at=now, heartbeat_at=now, dry_run=dry_run
            )
    except IntegrityError:
        logger.info("a %s sync is already running; this one exits", kind)
        return None


def sync_run_save_progress(*, run: SyncRun, force: bool = False, every: float = 2.0) -> None:
    """Persist counters and heartbeat, at most every ``every`` seconds unless forced."""
    now = timezone.now()
    if not force and (now - run.heartbeat_at).total_seconds() < every:
        return
    run.heartbeat_at = now
    run.save()


def sync_run_finish(*, run: SyncRun, status: str, error: str = "") -> SyncRun:
    run.status = status
    run.error = error[:10_000]
    run.finished_at = run.heartbeat_at = timezone.now()
    run.save()
    return run


def sync_run_crashed(*, run: SyncRun, exc: BaseException) -> None:
    """Record that ``run`` stopped on an unexpected error (the caller re-raises it).

    Without this, a crashed run would hold the lock until ``LOCK_TIMEOUT``. When
    even that write fails (the database is gone), the heartbeat timeout remains.
    """
    logger.error("%s sync run %s crashed: %s: %s", run.kind, run.pk, type(exc).__name__, exc)
    try:
        sync_run_finish(run=run, status=SyncRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    except Exception:
        logger.exception("could not record the crash of sync run %s", run.pk)
