"""The lifecycle of a :class:`~polar_sync.models.SyncRun`, which is also the lock.

=========  ===========================================================  ==========
status     how a row gets there                                         holds lock
=========  ===========================================================  ==========
running    :func:`sync_run_start` (at most one row per kind)            yes
succeeded  :func:`sync_run_finish` (``partial`` / ``failed`` likewise)  no
abandoned  the next :func:`sync_run_start`, once the heartbeat is       no
           older than ``LOCK_TIMEOUT`` (the worker died: ``kill -9``)
=========  ===========================================================  ==========

A live run keeps ``heartbeat_at`` fresh with its progress and through
:func:`sync_run_heartbeat`, which its client calls before each request and while
it waits. Every write requires the row to be still ``running``: a run another
worker marked abandoned raises :class:`~polar_sync.exceptions.SyncRunLostError`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..client import PolarClient
from ..conf import HEARTBEAT_INTERVAL, polar_settings
from ..exceptions import PolarNotFoundError, SyncRunLostError
from ..models import SyncRun

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

T = TypeVar("T")


class PageResult(Protocol):
    """What a page's write reports (``bulk.UpsertResult``, the members' result)."""

    @property
    def created(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def unchanged(self) -> int: ...
    @property
    def failures(self) -> Sequence[Any]: ...


logger = logging.getLogger("polar_sync.sync")

# Set once, when the row is created; every other column is the run's to record.
_FIXED = frozenset({"id", "kind", "started_at", "dry_run"})


def sync_run_start(
    *, kind: str, dry_run: bool = False, client: PolarClient | None = None
) -> SyncRun | None:
    """Start a run of ``kind``, or return None when one is already running.

    A running row with a heartbeat older than ``LOCK_TIMEOUT`` (its worker died) is
    marked abandoned first. With ``client``, the run heartbeats as that client works.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=polar_settings().LOCK_TIMEOUT)
    abandoned = SyncRun.objects.filter(
        kind=kind, status=SyncRun.Status.RUNNING, heartbeat_at__lt=stale_before
    ).update(
        status=SyncRun.Status.ABANDONED,
        finished_at=now,
        error="the worker stopped sending heartbeats",
    )
    if abandoned:
        logger.warning("a %s sync stopped sending heartbeats: marked abandoned", kind)
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(
                kind=kind, started_at=now, heartbeat_at=now, dry_run=dry_run
            )
    except IntegrityError:
        logger.info("a %s sync is already running; this one exits", kind)
        return None
    if client is not None:
        client.on_wait = partial(sync_run_heartbeat, run=run)
        client.forget_served_version()  # this run records (and warns of) its own
    return run


def sync_run_heartbeat(*, run: SyncRun, force: bool = False) -> None:
    """Update ``heartbeat_at`` alone, at most every ``HEARTBEAT_INTERVAL`` seconds
    unless forced. Raises :class:`SyncRunLostError` when the row is no longer running."""
    now = timezone.now()
    if not force and (now - run.heartbeat_at).total_seconds() < HEARTBEAT_INTERVAL:
        return
    if not _while_running(run).update(heartbeat_at=now):
        raise _lost(run)
    run.heartbeat_at = now


def sync_run_save_progress(*, run: SyncRun, force: bool = False, every: float = 2.0) -> None:
    """Save counters and heartbeat, at most every ``every`` seconds unless forced.
    Raises :class:`SyncRunLostError` when the row is no longer running."""
    now = timezone.now()
    if not force and (now - run.heartbeat_at).total_seconds() < every:
        return
    run.heartbeat_at = now
    with transaction.atomic():  # a refused value must not poison an outer transaction
        written = _while_running(run).update(**_recorded(run, exclude={"status"}))
    if not written:
        raise _lost(run)


def sync_run_page_done(
    *, run: SyncRun, result: PageResult, progress: Callable[[SyncRun], None] | None = None
) -> None:
    """Count a written page into ``run`` (its last failures as the error), save the
    counters (throttled, as :func:`sync_run_save_progress`) and report progress."""
    run.pages += 1
    run.created += result.created
    run.updated += result.updated
    run.unchanged += result.unchanged
    run.failed += len(result.failures)
    if result.failures:
        run.error = "\n".join(str(f) for f in result.failures[-20:])
    sync_run_save_progress(run=run)
    if progress:
        progress(run)


def sync_run_confirm_missing(
    *,
    run: SyncRun,
    what: str,
    candidates: Sequence[T],
    limit: int,
    fetch: Callable[[T], Any],
    refresh: Callable[[Any], object],
    settle: Callable[[list[T], int], int],
) -> None:
    """Ask Polar for each of the first ``limit`` rows a complete walk did not see.

    Polar's own 404 (with its ``error`` field; an unknown route is never "not found")
    means gone; an answer means the walk skipped a row that moved between pages, and
    ``refresh`` writes it. ``settle(gone, confirmed)`` runs however the loop ends (a
    failed GET keeps what was confirmed) and returns how many rows it removed or marked.
    """
    if len(candidates) > limit:
        logger.warning(
            "%d %s are missing from the walk; confirming %d now, the rest next pull",
            len(candidates),
            what,
            limit,
        )
    gone: list[T] = []
    confirmed = 0
    try:
        for candidate in candidates[:limit]:
            try:
                payload = fetch(candidate)
            except PolarNotFoundError:
                gone.append(candidate)
            else:
                refresh(payload)
            confirmed += 1
            sync_run_save_progress(run=run)  # the heartbeat: hundreds of GETs take minutes
    finally:
        run.deleted += settle(gone, confirmed)


def sync_run_finish(
    *, run: SyncRun, status: str, error: str = "", client: PolarClient | None = None
) -> SyncRun:
    """Record how ``run`` ended, which frees the lock; a row no longer running is left alone.
    With ``client``, the API version its answers said they were served in is recorded.

    When the database refuses the full record (a counter out of range), the status,
    times and error are written alone, so that the lock is freed all the same.
    """
    run.status = status
    run.error = error[:10_000]
    run.finished_at = run.heartbeat_at = timezone.now()
    if client is not None:
        run.api_version = client.served_api_version or ""
    logger.info(
        "%s sync run %s %s: %d created, %d updated, %d deleted, %d failed, %d requests; "
        "API version served: %s",
        run.kind,
        run.pk,
        status,
        run.created,
        run.updated,
        run.deleted,
        run.failed,
        run.requests,
        run.api_version or "none (no answer read)",
    )
    try:
        with transaction.atomic():
            written = _while_running(run).update(**_recorded(run))
    except Exception as exc:
        logger.exception("could not record sync run %s in full; recording how it ended", run.pk)
        note = f"(its counters could not be saved: {type(exc).__name__}: {exc})"
        run.error = f"{run.error}\n{note}"[-10_000:] if run.error else note[:10_000]
        written = _while_running(run).update(
            status=run.status,
            finished_at=run.finished_at,
            heartbeat_at=run.heartbeat_at,
            error=run.error,
        )
    if not written:
        logger.warning(
            "%s sync run %s ended %s, but its row was no longer running; left as it is",
            run.kind,
            run.pk,
            status,
        )
    return run


def sync_run_crashed(*, run: SyncRun, exc: BaseException) -> None:
    """Record that ``run`` crashed (the caller re-raises), so the lock is freed now.
    When even that write fails (the database is gone), ``LOCK_TIMEOUT`` remains."""
    logger.error("%s sync run %s crashed: %s: %s", run.kind, run.pk, type(exc).__name__, exc)
    try:
        sync_run_finish(run=run, status=SyncRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
    except Exception:
        logger.exception("could not record the crash of sync run %s", run.pk)


def _while_running(run: SyncRun) -> QuerySet[SyncRun]:
    return SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING)


def _recorded(run: SyncRun, exclude: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    return {
        f.attname: getattr(run, f.attname)
        for f in SyncRun._meta.concrete_fields
        if f.attname not in _FIXED and f.attname not in exclude
    }


def _lost(run: SyncRun) -> SyncRunLostError:
    current = SyncRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
    logger.error("%s sync run %s lost its lock (now %s); stopping", run.kind, run.pk, current)
    return SyncRunLostError(
        f"this {run.kind} sync lost its lock: another worker marked it "
        f"{current or 'deleted'} after its heartbeat went stale (LOCK_TIMEOUT); "
        "it stopped without writing more"
    )
