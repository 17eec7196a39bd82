"""Webhooks from Polar: verify a delivery, store it once, then process it order-safely.

A delivery is verified with the Standard Webhooks scheme (:mod:`.webhook_verify`),
made storable (:mod:`.webhook_body`), stored once per ``webhook-id`` and processed after
commit. Events can arrive twice and in any order, so processing never lets an
older event overwrite what the mirror already holds:

- ``customer.created`` / ``customer.updated`` are compared by ``modified_at``;
- ``customer.state_changed`` by the payload's ``timestamp`` against the newest state
  event already applied for that customer (a state change does not touch the
  customer's ``modified_at``);
- nothing revives a customer the mirror holds as deleted, except a later change.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..mapping import customer_fields
from ..models import Customer, WebhookEvent
from .customers import customer_upsert, customers_mark_deleted
from .states import customer_state_apply, customer_state_clear
from .webhook_body import UNSTORABLE_KEY, webhook_body_parse
from .webhook_verify import webhook_verify

logger = logging.getLogger("polar_sync.webhooks")

CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_DELETED = "customer.deleted"
CUSTOMER_STATE_CHANGED = "customer.state_changed"
# pg_advisory_xact_lock(classid, objid): a fixed class keeps these locks apart from others.
_LOCK_CLASS = 0x504F4C52  # "POLR"

Status = WebhookEvent.Status
Enqueue = Callable[[int], Any]


def webhook_receive(
    *, body: bytes, headers: Mapping[str, str], enqueue: Enqueue | None = None
) -> tuple[WebhookEvent, bool]:
    """Verify and store one delivery; ``enqueue(event_pk)`` runs after commit if it is new.

    Returns the event and whether it was new (False: a redelivery, not processed again).
    A genuine body the database cannot hold as sent is stored failed (see
    :mod:`.webhook_body`); one that is not a JSON object is rejected.
    """
    webhook_id = webhook_verify(body=body, headers=headers)
    payload, problem = webhook_body_parse(body)
    return webhook_event_store(
        webhook_id=webhook_id, payload=payload, problem=problem, enqueue=enqueue
    )


def webhook_event_store(
    *,
    webhook_id: str,
    payload: dict[str, Any],
    problem: str = "",
    enqueue: Enqueue | None = None,
) -> tuple[WebhookEvent, bool]:
    """Store a verified delivery once per ``webhook_id``; returns ``(event, created)``.

    An event of a type polar_sync does not handle is stored as ``ignored`` and not
    enqueued (a replay after an upgrade that handles it will process it); one whose
    body could not be stored as sent (``problem``) is stored ``failed``.
    """
    existing = WebhookEvent.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing, False
    event_type = payload.get("type") if isinstance(payload.get("type"), str) else ""
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
            if handled and enqueue is not None:
                transaction.on_commit(lambda: _enqueue(enqueue, event))
    except IntegrityError:
        # Two deliveries of one webhook-id raced; the other one stored it.
        existing = WebhookEvent.objects.filter(webhook_id=webhook_id).first()
        if existing is None:
            raise
        return existing, False
    return event, True


def _enqueue(enqueue: Enqueue, event: WebhookEvent) -> None:
    try:
        enqueue(event.pk)
    except Exception:
        # The event is stored: a broker outage must not turn the delivery into an error.
        logger.exception(
            "webhook %s (%s) is stored but could not be queued; "
            "`manage.py polar_webhooks --replay` processes it",
            event.webhook_id,
            event.event_type,
        )


def webhook_event_process(*, event_id: int, force: bool = False) -> WebhookEvent:
    """Apply one stored event to the mirror and record the outcome on it.

    An event already processed (or failed, or ignored) is left alone unless
    ``force`` (a replay). Any failure is recorded on the event with its error,
    never raised: the delivery was acknowledged and the event can be replayed.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.status != Status.RECEIVED and not force:
            return event
        event.attempts += 1
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
                _lock_customer(event.customer_id)
            try:
                with transaction.atomic():
                    reason = handler(event)
            except Exception as exc:
                event.status, event.error = Status.FAILED, f"{type(exc).__name__}: {exc}"[:4000]
                logger.warning(
                    "webhook %s (%s) failed: %s", event.webhook_id, event.event_type, event.error
                )
            else:
                event.status = Status.IGNORED if reason else Status.PROCESSED
                event.error = reason or ""
        event.processed_at = timezone.now()
        event.save(update_fields=["status", "error", "attempts", "processed_at"])
    return event


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
    oldest_first = events.order_by(F("occurred_at").asc(nulls_last=True), "received_at", "pk")
    outcomes: Counter[str] = Counter()
    for pk in list(oldest_first.values_list("pk", flat=True)):
        event = webhook_event_process(event_id=pk, force=True)
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


# -- processing ---------------------------------------------------------------------------


def _data(event: WebhookEvent) -> dict[str, Any]:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    if not isinstance(data, dict):
        raise ValueError("the event has no 'data' object")
    return data


def _older_than_mirror(fields: dict[str, Any], *, compare_modified: bool) -> str | None:
    """Why a Customer payload must not overwrite the mirror's row, or None."""
    row = (
        Customer.objects.filter(pk=fields["id"])
        .values("created_at", "modified_at", "deleted_at")
        .first()
    )
    if row is None:
        return None
    incoming = fields["modified_at"] or fields["created_at"]
    current = row["modified_at"] or row["created_at"]
    if compare_modified and incoming < current:
        return f"older than the mirror (modified_at {incoming.isoformat()} < {current.isoformat()})"
    if row["deleted_at"] and not fields["deleted_at"] and incoming <= row["deleted_at"]:
        return "the customer was deleted after this change"
    return None


def _customer_changed(event: WebhookEvent) -> str | None:
    data = _data(event)
    reason = _older_than_mirror(customer_fields(data), compare_modified=True)
    if reason:
        return reason
    customer_upsert(payload=data, skip_older=True)
    return None


def _customer_deleted(event: WebhookEvent) -> str | None:
    data = _data(event)
    fields = customer_fields(data)
    # Upsert first, so the mirror holds the deletion even for a customer it never saw,
    # and a late customer.updated cannot bring it back.
    customer_upsert(payload=data, skip_older=True)
    customers_mark_deleted(ids=[fields["id"]], when=fields["deleted_at"])
    customer_state_clear(customer_id=fields["id"])
    return None


def _state_changed(event: WebhookEvent) -> str | None:
    data = _data(event)
    reason = _older_than_mirror(customer_fields(data), compare_modified=False)
    if reason:
        return reason
    if event.occurred_at is not None:
        newer = (
            WebhookEvent.objects.filter(
                customer_id=event.customer_id,
                event_type=CUSTOMER_STATE_CHANGED,
                status=Status.PROCESSED,
                occurred_at__gt=event.occurred_at,
            )
            .exclude(pk=event.pk)
            .order_by("-occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        if newer is not None:
            return f"a newer state (of {newer.isoformat()}) was already applied"
    customer_state_apply(payload=data, skip_older=True)
    return None


HANDLERS: dict[str, Callable[[WebhookEvent], str | None]] = {
    CUSTOMER_CREATED: _customer_changed,
    CUSTOMER_UPDATED: _customer_changed,
    CUSTOMER_DELETED: _customer_deleted,
    CUSTOMER_STATE_CHANGED: _state_changed,
}


def _lock_customer(customer_id: uuid.UUID) -> None:
    """Serialize the processing of one customer's events across workers (PostgreSQL).

    Without it, two workers could each check that no newer event was applied, and
    the older one could commit last. SQLite has no such lock: there, one worker at a
    time should process webhooks (SQLite is for development and tests).
    """
    if connection.vendor != "postgresql":
        return
    objid = int.from_bytes(customer_id.bytes[:4], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, objid])


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
