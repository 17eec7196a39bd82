"""Webhooks from Polar: verify a delivery, store it once, then process it order-safely.

A delivery is verified and made storable (:mod:`.webhook_body`), and stored once per
``webhook-id``. After commit it is processed in this process, or by the
``polar_sync.process_webhook`` task when a broker is configured
(:func:`.broker.tasks_run_inline` decides); :mod:`.webhook_handlers` applies each type.

Nothing is lost on the way: an event whose processing never started (a broker down,
a crash after commit) stays ``received``, and one that met a transient failure is
``retrying`` with a backoff; :func:`webhook_events_sweep` (the
``polar_sync.sweep_webhooks`` task, ``manage.py polar_webhooks --sweep``, and after
each in-process delivery) processes both. :class:`~polar_sync.models.WebhookEvent`
has the table of states.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..conf import ERA_2025, polar_settings
from ..exceptions import PolarTransientError
from ..models import WebhookEvent
from .broker import broker_connection, broker_send, tasks_run_inline
from .webhook_body import UNSTORABLE_KEY, webhook_body_parse, webhook_verify
from .webhook_handlers import HANDLERS, lock_customer

logger = logging.getLogger("polar_sync.webhooks")

Status = WebhookEvent.Status
Progress = Callable[[WebhookEvent], None] | None  # called with each processed event
# Failures worth another attempt: the database or the network was away for a while.
MEMBER_PREFIXES = ("member.", "customer_seat.")
TRANSIENT_ERRORS = (OperationalError, InterfaceError, PolarTransientError)
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
    """Verify and store one delivery; returns the event and whether it is new.

    A redelivery of a stored ``webhook-id`` is not processed again. A type polar_sync
    does not handle is stored ``ignored``, a genuine body the database cannot hold as
    sent ``failed`` (:mod:`.webhook_body`); any other is dispatched after commit.
    """
    webhook_id = webhook_verify(body=body, headers=headers)
    payload, problem = webhook_body_parse(body)
    kind = payload.get("type")
    event_type = kind if isinstance(kind, str) else ""
    values: dict[str, Any] = {
        "event_type": event_type[:64],
        "payload": payload,
        "occurred_at": _occurred_at(payload),
        "customer_id": _customer_id(payload),
        "api_version": _api_version(payload, event_type),
    }
    handled = event_type in HANDLERS and not problem
    if problem:
        values.update(status=Status.FAILED, error=problem, processed_at=timezone.now())
    elif not handled:
        values.update(
            status=Status.IGNORED, error=_not_handled(event_type), processed_at=timezone.now()
        )
    # A race of two deliveries of one webhook-id: the loser gets the winner's row.
    event, created = WebhookEvent.objects.get_or_create(webhook_id=webhook_id, defaults=values)
    if created and problem:
        logger.warning(
            "webhook %s (%s) stored as failed: %s", webhook_id, event_type or "?", problem
        )
    if created and handled:
        transaction.on_commit(lambda: webhook_event_dispatch(event_id=event.pk))
    return event, created


_warned_versions: set[tuple[str, str | None]] = set()


def _api_version(payload: dict[str, Any], event_type: str) -> str:
    """The payload's top-level ``api_version`` (the version of the endpoint it was sent
    for; none before dated versions); a mismatch with API_VERSION is logged."""
    value = payload.get("api_version")
    if not isinstance(value, str):
        return ""
    wanted = polar_settings().API_VERSION
    if value != (wanted or ERA_2025) and (value, wanted) not in _warned_versions:
        _warned_versions.add((value, wanted))  # once per process, not per delivery
        logger.warning(
            "webhook %s was sent for API version %s, but POLAR_SYNC['API_VERSION'] is %r: "
            "set the endpoint's version in Polar to match",
            event_type or "?",
            value,
            wanted,
        )
    return value[:16]


def _not_handled(event_type: str) -> str:
    return f"event type {event_type!r} is not handled"


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


def webhook_event_process(*, event_id: int, force: bool = False) -> WebhookEvent:
    """Apply one stored event to the mirror and record the outcome on it (not raised).

    Only an event that is due (``received``, or ``retrying`` whose time came) is
    processed, unless ``force`` (a replay). A transient failure makes it ``retrying``
    with a backoff until ``MAX_ATTEMPTS``; any other failure makes it ``failed``.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        now = timezone.now()
        due = event.status == Status.RECEIVED or (
            event.status == Status.RETRYING
            and (event.next_attempt_at is None or event.next_attempt_at <= now)
        )
        if not force and not due:
            return event
        event.attempts += 1
        event.next_attempt_at = None
        handler = HANDLERS.get(event.event_type)
        if isinstance(event.payload, dict) and UNSTORABLE_KEY in event.payload:
            # Only the text of the body was kept: nothing to apply; the error says why.
            event.status = Status.FAILED
        elif handler is None:
            event.status, event.error = Status.IGNORED, _not_handled(event.event_type)
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
    event.status = Status.RETRYING if retry else Status.FAILED
    outcome = "failed for good"
    if retry:
        event.next_attempt_at = now + min(RETRY_BASE * 2 ** (event.attempts - 1), RETRY_MAX)
        outcome = f"retrying at {event.next_attempt_at.isoformat()}"
    logger.warning(
        "webhook %s (%s) failed (attempt %d of %d), %s: %s",
        event.webhook_id,
        event.event_type,
        event.attempts,
        MAX_ATTEMPTS,
        outcome,
        event.error,
    )


def webhook_events_sweep(*, limit: int | None = None, progress: Progress = None) -> Counter[str]:
    """Process the events left behind, oldest change first; returns counts by outcome.

    Takes the events still ``received`` ``SWEEP_GRACE`` after they arrived (their task
    was lost) and the ``retrying`` ones whose time came. Safe from several workers.
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
    progress: Progress = None,
) -> Counter[str]:
    """Process the selected stored events again, oldest change first; returns counts
    by outcome. Safe at any time: an event older than the mirror is ignored."""
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
    progress: Progress,
) -> Counter[str]:
    oldest_first = events.order_by(F("occurred_at").asc(nulls_last=True), "received_at", "pk")
    outcomes: Counter[str] = Counter()
    for pk in list(oldest_first.values_list("pk", flat=True)[:limit]):
        event = webhook_event_process(event_id=pk, force=force)
        outcomes[event.status] += 1
        if progress is not None:
            progress(event)
    return outcomes


def webhook_event_counts(*, since: datetime | None = None) -> dict[str, int]:
    """How many stored events are in each status (every status, zero or not)."""
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
        if parsed is None:
            return None
        # The database stores UTC: an offset must not push year 1 or 9999 out of range.
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # ValueError: well-formed but impossible (month 13)
        return None


def _customer_id(payload: dict[str, Any]) -> uuid.UUID | None:
    if str(payload.get("type", "")).startswith(("product.", "benefit.")):
        return None  # its data is a product or benefit: no customer to lock or show
    data = payload.get("data")
    # A member's or a seat's event names its (team) customer in ``customer_id``.
    key = "customer_id" if str(payload.get("type")).startswith(MEMBER_PREFIXES) else "id"
    try:
        return uuid.UUID(str(data[key])) if isinstance(data, dict) else None
    except (KeyError, ValueError):
        return None
