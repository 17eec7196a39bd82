"""Webhooks from Polar: verify a delivery, store it once, then process it order-safely.

A delivery is verified with the Standard Webhooks scheme (:mod:`.webhook_verify`),
made storable (:mod:`.webhook_body`) and stored once per ``webhook-id``. After
commit it is processed in this process, or by the ``polar_sync.process_webhook``
task when a broker is configured (one decision for all queued work:
:func:`.broker.tasks_run_inline`). Each event type is applied by
:mod:`.webhook_handlers`, order-safely.

Nothing is lost on the way: an event whose processing never started (a broker
down, a crash after commit) stays ``received``, and one that met a transient
failure (database, network) is ``retrying`` with ``next_attempt_at`` (backoff);
:func:`webhook_events_sweep`, run periodically (the ``polar_sync.sweep_webhooks``
task, ``manage.py polar_webhooks --sweep``) and after each in-process delivery,
processes both. See :class:`~polar_sync.models.WebhookEvent` for the states.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..exceptions import PolarTransientError
from ..models import WebhookEvent
from .broker import broker_connection, broker_send, tasks_run_inline
from .webhook_body import UNSTORABLE_KEY, webhook_body_parse
from .webhook_handlers import HANDLERS, lock_customer
from .webhook_verify import webhook_verify

logger = logging.getLogger("polar_sync.webhooks")

Status = WebhookEvent.Status
# Failures worth another attempt: the database or the network was away for a while.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PolarTransientError,
)
# Attempts before a transient failure counts as failed, and the backoff between them:
# RETRY_BASE * 2**(attempt - 1), capped: 30 s, 1, 2, 4, 8, 16, 32 min (about an hour).
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
# A queued event still ``received`` after this long lost its task (or its process):
# the sweep takes it. Processing twice is harmless (the event row is locked, and
# an event no longer due is left alone), so this only avoids needless overlap.
SWEEP_GRACE = timedelta(seconds=30)
# Events the sweep that follows an in-process delivery may take along (bounded, so a
# backlog never holds up the answer to Polar).
INLINE_SWEEP_LIMIT = 20


def webhook_receive(*, body: bytes, headers: Mapping[str, str]) -> tuple[WebhookEvent, bool]:
    """Verify and store one delivery; processing is arranged after commit if it is new.

    Returns the event and whether it was new (False: a redelivery, not processed again).
    A genuine body the database cannot hold as sent is stored failed (see
    :mod:`.webhook_body`); one that is not a JSON object is rejected.
    """
    webhook_id = webhook_verify(body=body, headers=headers)
    payload, problem = webhook_body_parse(body)
    return webhook_event_store(webhook_id=webhook_id, payload=payload, problem=problem)


def webhook_event_store(
    *, webhook_id: str, payload: dict[str, Any], problem: str = ""
) -> tuple[WebhookEvent, bool]:
    """Store a verified delivery once per ``webhook_id``; returns ``(event, created)``.

    An event of a type polar_sync does not handle is stored as ``ignored`` and not
    processed (a replay after an upgrade that handles it will process it); one whose
    body could not be stored as sent (``problem``) is stored ``failed``. Any other is
    handed to :func:`webhook_event_dispatch` once the transaction commits.
    """
    existing = WebhookEvent.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing, False
    kind = payload.get("type")
    event_type = kind if isinstance(kind, str) else ""
    values: dict[str, Any] = {
        "event_type": event_type[:64],
        "payload": payload,
        "occurred_at": _occurred_at(payload),
        "customer_id": _customer_id(payload),
    }
    handled = event_type in HANDLERS and not problem
    if problem:
        values.update(status=Status.FAILED, error=problem, processed_at=timezone.now())
        logger.warning(
            "webhook %s (%s) stored as failed: %s", webhook_id, event_type or "?", problem
        )
    elif not handled:
        values.update(
            status=Status.IGNORED,
            error=f"event type {event_type!r} is not handled",
            processed_at=timezone.now(),
        )
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(webhook_id=webhook_id, **values)
            if handled:
                transaction.on_commit(lambda: webhook_event_dispatch(event_id=event.pk))
    except IntegrityError:
        # Two deliveries of one webhook-id raced; the other one stored it.
        existing = WebhookEvent.objects.filter(webhook_id=webhook_id).first()
        if existing is None:
            raise
        return existing, False
    return event, True


def webhook_event_dispatch(*, event_id: int) -> None:
    """After commit: process the event here (no broker, or eager tasks) or queue its task.

    Never raises: the delivery is stored and acknowledged whatever happens here, and
    an event left ``received`` is the periodic sweep's.
    """
    if tasks_run_inline():
        try:
            webhook_event_process(event_id=event_id)
            # No beat without a broker: deliveries themselves carry the retries along.
            webhook_events_sweep(limit=INLINE_SWEEP_LIMIT)
        except Exception:
            logger.exception(
                "webhook event %s could not be processed in-process; it stays for the sweep",
                event_id,
            )
        return
    try:
        with broker_connection() as connection:
            broker_send("polar_sync.process_webhook", args=[event_id], connection=connection)
    except Exception as exc:
        logger.warning(
            "webhook event %s is stored but could not be queued (%s: %s); the periodic "
            "sweep (polar_sync.sweep_webhooks, `manage.py polar_webhooks --sweep`) "
            "processes it",
            event_id,
            type(exc).__name__,
            exc,
        )


def _due(event: WebhookEvent, now: datetime) -> bool:
    if event.status == Status.RECEIVED:
        return True
    if event.status == Status.RETRYING:
        return event.next_attempt_at is None or event.next_attempt_at <= now
    return False


def _retry_delay(attempts: int) -> timedelta:
    return min(RETRY_BASE * 2 ** max(attempts - 1, 0), RETRY_MAX)


def webhook_event_process(*, event_id: int, force: bool = False) -> WebhookEvent:
    """Apply one stored event to the mirror and record the outcome on it.

    Only an event that is due (``received``, or ``retrying`` whose time came) is
    processed, unless ``force`` (a replay). A transient failure (database, network)
    makes it ``retrying`` with a backoff until ``MAX_ATTEMPTS``; any other failure
    makes it ``failed`` at once. Failures are recorded on the event, not raised: the
    delivery was acknowledged and the event can be replayed.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        now = timezone.now()
        if not force and not _due(event, now):
            return event
        event.attempts += 1
        event.next_attempt_at = None
        handler = HANDLERS.get(event.event_type)
        if isinstance(event.payload, dict) and UNSTORABLE_KEY in event.payload:
            # Only the text of the body was kept: nothing to apply; the error says why.
            event.status = Status.FAILED
        elif handler is None:
            event.status, event.error = (
                Status.IGNORED,
                f"event type {event.event_type!r} is not handled",
            )
        else:
            if event.customer_id is not None:
                lock_customer(event.customer_id)
            try:
                with transaction.atomic():
                    reason = handler(event)
            except TRANSIENT_ERRORS as exc:
                _record_failure(event, exc, retry=event.attempts < MAX_ATTEMPTS, now=now)
            except Exception as exc:
                _record_failure(event, exc, retry=False, now=now)
            else:
                event.status = Status.IGNORED if reason else Status.PROCESSED
                event.error = reason or ""
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "error", "attempts", "processed_at", "next_attempt_at"])
    return event


def _record_failure(event: WebhookEvent, exc: Exception, *, retry: bool, now: datetime) -> None:
    event.error = f"{type(exc).__name__}: {exc}"[:4000]
    if retry:
        event.status = Status.RETRYING
        event.next_attempt_at = now + _retry_delay(event.attempts)
        logger.warning(
            "webhook %s (%s) failed (attempt %d of %d), retrying at %s: %s",
            event.webhook_id,
            event.event_type,
            event.attempts,
            MAX_ATTEMPTS,
            event.next_attempt_at.isoformat(),
            event.error,
        )
        return
    event.status = Status.FAILED
    logger.warning(
        "webhook %s (%s) failed after %d attempt(s): %s",
        event.webhook_id,
        event.event_type,
        event.attempts,
        event.error,
    )


def webhook_events_sweep(
    *,
    limit: int | None = None,
    progress: Callable[[WebhookEvent], None] | None = None,
) -> Counter[str]:
    """Process the events left behind, oldest change first; returns counts by outcome.

    Takes the events still ``received`` ``SWEEP_GRACE`` after they arrived (their
    task was lost: a broker down, a process killed) and the ``retrying`` ones whose
    ``next_attempt_at`` came. Safe to run at any time, from several workers.
    """
    now = timezone.now()
    due = WebhookEvent.objects.filter(
        Q(status=Status.RECEIVED, received_at__lte=now - SWEEP_GRACE)
        | Q(status=Status.RETRYING, next_attempt_at__lte=now)
    )
    return _events_process(due, force=False, limit=limit, progress=progress)


def webhook_events_replay(
    *,
    failed_only: bool = False,
    since: datetime | None = None,
    ids: Iterable[int] | None = None,
    progress: Callable[[WebhookEvent], None] | None = None,
) -> Counter[str]:
    """Process stored events again, oldest change first; returns counts by outcome.

    Selects every event, or only failed ones, those received since ``since``, or
    those with the primary keys ``ids`` (e.g. an admin action). Safe to run at any
    time: an event older than what the mirror holds is ignored.
    """
    events = WebhookEvent.objects.all()
    if ids is not None:
        events = events.filter(pk__in=list(ids))
    if failed_only:
        events = events.filter(status=Status.FAILED)
    if since is not None:
        events = events.filter(received_at__gte=since)
    return _events_process(events, force=True, progress=progress)


def _events_process(
    events: QuerySet[WebhookEvent],
    *,
    force: bool,
    limit: int | None = None,
    progress: Callable[[WebhookEvent], None] | None,
) -> Counter[str]:
    """Process ``events`` one by one, oldest change first; returns counts by outcome."""
    oldest_first = events.order_by(F("occurred_at").asc(nulls_last=True), "received_at", "pk")
    outcomes: Counter[str] = Counter()
    for pk in list(oldest_first.values_list("pk", flat=True)[:limit]):
        event = webhook_event_process(event_id=pk, force=force)
        outcomes[event.status] += 1
        if progress is not None:
            progress(event)
    return outcomes


def webhook_event_counts(*, since: datetime | None = None) -> dict[str, int]:
    """How many stored events are in each status (every status present, zero or not)."""
    events = WebhookEvent.objects.all()
    if since is not None:
        events = events.filter(received_at__gte=since)
    counts = dict.fromkeys(Status.values, 0)
    # Counted by the database, not by loading every event's status.
    counts.update(dict(events.order_by().values_list("status").annotate(n=Count("pk"))))
    return counts


def _occurred_at(payload: dict[str, Any]) -> datetime | None:
    value = payload.get("timestamp")
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # well-formed but impossible, e.g. month 13
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # The database stores UTC: an offset must not push year 1 or 9999 out of range.
        return parsed.astimezone(UTC) if parsed is not None else None
    except OverflowError:
        return None


def _customer_id(payload: dict[str, Any]) -> uuid.UUID | None:
    data = payload.get("data")
    try:
        return uuid.UUID(str(data["id"])) if isinstance(data, dict) else None
    except (KeyError, ValueError):
        return None
