"""Pushing local users to Polar, part 2: draining the outbox.

Each :class:`~polar_sync.models.PushOutbox` row is claimed for a while (so two
workers never push one user concurrently, hence out of order), pushed, then
removed in one transaction with the mirror's update, but only if the row did not
change meanwhile; if it did, the newer version is pushed next.

- Upsert: ``update_external``; on 404, ``create`` with the external ID; when the
  email already belongs to a customer without an external ID (a guest checkout),
  adopt that customer: set its external ID (allowed once) and its fields.
- Delete: ``delete_external``; a 404 means already gone, which counts as done.
- Transient failures (network, 429, 5xx) keep the row pending with a backoff; any
  other refusal (a 422...) marks it failed with Polar's message, visible and not
  retried until the user changes again or ``polar_push --retry-failed``.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..client import PolarClient
from ..conf import polar_settings
from ..exceptions import (
    PolarAuthenticationError,
    PolarConfigurationError,
    PolarError,
    PolarNotFoundError,
    PolarRateLimitError,
    PolarTransientError,
    PolarValidationError,
)
from ..models import Customer, PushedPayload, PushOutbox
from .budget import Budget, budget_pause, budget_take, budgeted_client
from .customers import customers_mark_deleted, customers_upsert

logger = logging.getLogger("polar_sync.push")

JSON = dict[str, Any]
BATCH = 200
# A drain gives up after this many transient failures in a row: Polar is down, and
# hammering it row after row helps nobody. The rows wait for the next drain.
MAX_CONSECUTIVE_TRANSIENT = 3
BACKOFF_BASE = 5.0  # seconds before the first retry of a row; doubles with each attempt
BACKOFF_MAX = 3600.0
# How many times one drain re-pushes a row that changed while it was being pushed.
MAX_ROUNDS = 3


class PushRefused(Exception):
    """Polar cannot take this push as it stands (e.g. the email belongs to another user)."""


class Outcome(Enum):
    DONE = "done"
    CHANGED = "changed"  # pushed, but the row changed meanwhile: push it again
    BUSY = "busy"  # another worker holds the row
    TRANSIENT = "transient"
    FAILED = "failed"
    AUTH = "auth"


@dataclass
class DrainResult:
    """What a drain did; ``stopped`` says why it ended early, if it did."""

    created: int = 0
    updated: int = 0
    adopted: int = 0  # guest customers given the user's external ID
    deleted: int = 0
    already_gone: int = 0  # deletes answered 404
    unchanged: int = 0  # upserts of the payload last pushed: removed without a request
    failed: list[tuple[str, str]] = field(default_factory=list)  # (external ID, error)
    postponed: int = 0  # transient failures: retried later with backoff
    busy: int = 0  # held by another worker
    requests: int = 0
    stopped: str = ""

    @property
    def pushed(self) -> int:
        return self.created + self.updated + self.adopted + self.deleted + self.already_gone

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pushed": self.pushed}


# ---------------------------------------------------------------------------
# clients, one per thread


_local = threading.local()


def _cached(name: str, build: Any) -> PolarClient:
    conf = polar_settings()
    cached = getattr(_local, name, None)
    if cached is not None and cached[0] == conf:
        return cached[1]
    client = build()
    setattr(_local, name, (conf, client))
    return client


def worker_client() -> PolarClient:
    """For workers and commands: retries with backoff, waits for the shared budget."""
    return _cached("worker", budgeted_client)


def inline_client() -> PolarClient:
    """For a push inside a web request: one attempt, and no waiting for the budget."""

    def build() -> PolarClient:
        client = PolarClient.from_settings(max_retries=0)
        client.before_request = partial(_take_or_raise, Budget.from_settings())
        return client

    return _cached("inline", build)


def _take_or_raise(budget: Budget) -> None:
    if not budget_take(budget=budget, max_wait=0):
        raise PolarRateLimitError(
            "polar_sync's shared request budget is spent for now", operation="push"
        )


# ---------------------------------------------------------------------------
# the drain


def outbox_drain(
    *,
    external_id: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
    client: PolarClient | None = None,
) -> DrainResult:
    """Push pending outbox rows to Polar: one user's, or every due row.

    ``force`` ignores backoff (the ``polar_push`` command); ``retry_failed`` first
    makes failed rows pending again.
    """
    result = DrainResult()
    if not polar_settings().PUSH_ENABLED:
        result.stopped = "pushing is disabled (POLAR_SYNC['PUSH_ENABLED'] is False)"
        return result
    if retry_failed:
        failed = PushOutbox.objects.filter(status=PushOutbox.Status.FAILED)
        if external_id is not None:
            failed = failed.filter(external_id=external_id)
        now = timezone.now()
        failed.update(
            status=PushOutbox.Status.PENDING, attempts=0, next_attempt_at=now, updated_at=now
        )
    pending = PushOutbox.objects.filter(status=PushOutbox.Status.PENDING)
    row = None
    if external_id is not None:
        row = pending.filter(external_id=external_id).first()
        if row is None:
            return result  # no client, no request: the common case of a duplicate task
    elif not pending.exists():
        return result
    try:
        client = client or worker_client()
    except PolarConfigurationError as exc:
        result.stopped = str(exc)
        logger.error("polar_sync: cannot push: %s", exc)
        return result
    sent_before = client.request_count
    try:
        if row is not None:
            _drain_row(row=row, client=client, result=result, force=force)
        else:
            _drain(pending=pending, client=client, result=result, force=force)
    finally:
        result.requests = client.request_count - sent_before
    return result


def _drain(*, pending: Any, client: PolarClient, result: DrainResult, force: bool) -> None:
    last_pk: str | None = None  # the key is the external ID: any string, "" included
    transient_in_a_row = 0
    while True:
        batch = pending if last_pk is None else pending.filter(pk__gt=last_pk)
        if not force:
            batch = batch.filter(next_attempt_at__lte=timezone.now())
        rows = list(batch.order_by("pk")[:BATCH])
        for row in rows:
            last_pk = row.pk
            outcome = _drain_row(row=row, client=client, result=result, force=force)
            if outcome is Outcome.AUTH:
                return
            transient_in_a_row = transient_in_a_row + 1 if outcome is Outcome.TRANSIENT else 0
            if transient_in_a_row >= MAX_CONSECUTIVE_TRANSIENT:
                result.stopped = "Polar is unavailable; the remaining rows wait for the next drain"
                return
        if len(rows) < BATCH:
            return


def _drain_row(
    *, row: PushOutbox | None, client: PolarClient, result: DrainResult, force: bool
) -> Outcome:
    """Push one row; re-read and push again (a few times) if it changes meanwhile."""
    outcome = Outcome.DONE
    for _ in range(MAX_ROUNDS):
        now = timezone.now()
        if row is None or row.status != PushOutbox.Status.PENDING:
            return Outcome.DONE
        if not force and row.next_attempt_at > now:
            return Outcome.DONE
        if not _claim(row=row, now=now):
            row = PushOutbox.objects.filter(pk=row.pk).first()
            if row is not None and row.locked_until is not None and row.locked_until > now:
                result.busy += 1
                return Outcome.BUSY
            continue  # it changed since it was read: try the fresh version
        outcome = _push(row=row, client=client, result=result)
        if outcome is not Outcome.CHANGED:
            return outcome
        row = PushOutbox.objects.filter(pk=row.pk).first()
    return outcome


def _claim(*, row: PushOutbox, now: datetime) -> bool:
    conf = polar_settings()
    # Long enough for the slowest push: up to five requests, each with its retries.
    lease = conf.TIMEOUT * (conf.MAX_RETRIES + 1) * 5 + conf.BACKOFF_MAX + 60
    claimed = (
        PushOutbox.objects.filter(pk=row.pk, revision=row.revision)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(locked_until=now + timedelta(seconds=lease))
    )
    return claimed == 1


def _push(*, row: PushOutbox, client: PolarClient, result: DrainResult) -> Outcome:
    if _pushed_already(row):
        result.unchanged += 1
        return Outcome.CHANGED if _remove(row=row) else Outcome.DONE
    try:
        if row.action == PushOutbox.Action.DELETE:
            kind, customer = _delete(client, row.external_id), None
        else:
            kind, customer = _upsert(client, row)
    except PolarAuthenticationError as exc:
        # The token, not the row: keep the row pending and stop until it is fixed.
        _postpone(row=row, exc=exc)
        result.postponed += 1
        result.stopped = f"Polar refused the access token: {exc}"
        logger.error("polar_sync: push of %s stopped: %s", row.external_id, exc)
        return Outcome.AUTH
    except PolarTransientError as exc:
        _postpone(row=row, exc=exc)
        result.postponed += 1
        logger.warning("polar_sync: push of %s postponed: %s", row.external_id, exc)
        return Outcome.TRANSIENT
    except (PolarError, PushRefused) as exc:
        _fail(row=row, exc=exc)
        result.failed.append((row.external_id, str(exc)))
        logger.error("polar_sync: push of %s failed: %s", row.external_id, exc)
        return Outcome.FAILED
    except BaseException as exc:
        _postpone(row=row, exc=exc)  # a bug or an interrupt: never leave the row locked
        raise
    setattr(result, kind, getattr(result, kind) + 1)
    return Outcome.CHANGED if _complete(row=row, customer=customer) else Outcome.DONE


def _pushed_already(row: PushOutbox) -> bool:
    """An upsert of exactly what Polar accepted last (a name changed, then changed back).

    The receiver writes a changed user's row without reading what was pushed (that
    would cost every such save a query); the comparison happens here instead.
    """
    if row.action != PushOutbox.Action.UPSERT or row.delete_first:
        return False
    pushed = PushedPayload.objects.filter(external_id=row.external_id).values_list(
        "payload", flat=True
    )
    return pushed.first() == row.payload


def _delete(client: PolarClient, external_id: str) -> str:
    try:
        client.delete_external(external_id)
    except PolarNotFoundError:
        return "already_gone"
    return "deleted"


def _upsert(client: PolarClient, row: PushOutbox) -> tuple[str, JSON]:
    external_id, payload = row.external_id, row.payload
    if row.delete_first:
        # The external ID's previous user was deleted and a new one took it over.
        _delete(client, external_id)
        # Only this revision's: a newer change that took the ID over again meanwhile
        # must delete what this push is about to create.
        PushOutbox.objects.filter(pk=row.pk, revision=row.revision).update(delete_first=False)
    try:
        return "updated", client.update_external(external_id, payload)
    except PolarNotFoundError:
        pass
    try:
        return "created", client.create({**payload, "external_id": external_id})
    except PolarValidationError as exc:
        if exc.has_error_on("external_id"):  # created meanwhile by someone else
            return "updated", client.update_external(external_id, payload)
        if not exc.has_error_on("email"):
            raise
        return "adopted", _adopt(client, external_id, payload, exc)


def _adopt(client: PolarClient, external_id: str, payload: JSON, refusal: Exception) -> JSON:
    """Give the existing customer with the user's email the user's external ID."""
    email = payload.get("email")
    found = client.list(email=str(email), limit=1)["items"] if email else []
    if not found:
        raise refusal  # the email itself was refused (missing, malformed...)
    guest = found[0]
    owner = guest.get("external_id")
    if owner is not None and owner != external_id:
        raise PushRefused(
            f"the email {email} belongs to Polar customer {guest.get('id')}, which has "
            f"external ID {owner!r} (another user)"
        )
    return client.update(str(guest["id"]), {**payload, "external_id": external_id})


def _complete(*, row: PushOutbox, customer: JSON | None) -> bool:
    """Record the push and remove the row; True when the row changed meanwhile."""
    external_id, now = row.external_id, timezone.now()
    with transaction.atomic():
        if row.action == PushOutbox.Action.DELETE or row.delete_first:
            stale = Customer.objects.filter(external_id=external_id, deleted_at__isnull=True)
            if customer is not None:
                stale = stale.exclude(id=customer.get("id"))
            customers_mark_deleted(ids=list(stale.values_list("id", flat=True)), when=now)
        if customer is not None:
            # Polar's answer updates the mirror: no extra GET. (customers_upsert rather
            # than customer_upsert, which reads the row back for a caller we do not have.)
            for failure in customers_upsert(payloads=[customer]).failures:
                logger.warning("polar_sync: pushed %s, cannot mirror it: %s", external_id, failure)
            PushedPayload.objects.bulk_create(  # one upsert query
                [PushedPayload(external_id=external_id, payload=row.payload, pushed_at=now)],
                update_conflicts=True,
                unique_fields=["external_id"],
                update_fields=["payload", "pushed_at"],
            )
        else:
            PushedPayload.objects.filter(external_id=external_id).delete()
        return _remove(row=row)


def _remove(*, row: PushOutbox) -> bool:
    """Remove a row done with, unless it changed meanwhile (then unlock it); True if it did."""
    removed, _ = PushOutbox.objects.filter(pk=row.pk, revision=row.revision).delete()
    if not removed:
        PushOutbox.objects.filter(pk=row.pk).update(locked_until=None)
    return not removed


def _backoff(attempts: int) -> float:
    delay = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** min(attempts - 1, 20))
    return random.uniform(delay / 2, delay)  # jitter: rows failed together retry apart


def _postpone(*, row: PushOutbox, exc: BaseException) -> None:
    delay = _backoff(row.attempts + 1)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, PolarRateLimitError) and retry_after:
        delay = max(float(retry_after), 1.0)
        budget_pause(budget=Budget.from_settings(), seconds=delay)
    _release(row=row, status=PushOutbox.Status.PENDING, exc=exc, delay=delay)


def _fail(*, row: PushOutbox, exc: BaseException) -> None:
    _release(row=row, status=PushOutbox.Status.FAILED, exc=exc, delay=0.0)


def _release(*, row: PushOutbox, status: str, exc: BaseException, delay: float) -> None:
    now = timezone.now()
    updated = PushOutbox.objects.filter(pk=row.pk, revision=row.revision).update(
        status=status,
        attempts=row.attempts + 1,
        last_error=(str(exc) or type(exc).__name__)[:2000],
        next_attempt_at=now + timedelta(seconds=delay),
        locked_until=None,
        updated_at=now,
    )
    if not updated:  # a newer change arrived meanwhile: it deserves its own fresh attempt
        PushOutbox.objects.filter(pk=row.pk).update(locked_until=None)
