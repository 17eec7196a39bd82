"""Draining the outbox: claim a row, push it to Polar, complete or release it.

- Upsert: ``update_external``; on 404, ``create``; when the email belongs to a
  customer without an external ID (a guest checkout), adopt that customer.
- Delete: ``delete_external``; a 404 means already gone, which counts as done.
- An upsert of exactly the payload Polar last accepted is completed without a request.
- Transient failures (network, 429, 5xx) release the row pending with a backoff; any
  other refusal (a 422...) marks it failed with Polar's message, until the user
  changes again or ``polar_push --retry-failed``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.utils import timezone

from ...client import PolarClient
from ...conf import polar_settings
from ...exceptions import (
    PolarAuthenticationError,
    PolarConfigurationError,
    PolarError,
    PolarNotFoundError,
    PolarRateLimitError,
    PolarTransientError,
    PolarValidationError,
)
from ...mapping import JSON
from ...models import Customer, PushedPayload, PushOutbox
from ..budget import Budget, budget_pause, budget_take, budgeted_client
from ..customers import customers_mark_deleted, customers_upsert
from . import rows

logger = logging.getLogger("polar_sync.push")

BATCH = 200
# A drain gives up after this many transient failures in a row: Polar is down, and
# hammering it row after row helps nobody. The rows wait for the next drain.
MAX_CONSECUTIVE_TRANSIENT = 3
# How many times one drain re-pushes a row that changed while it was being pushed.
MAX_ROUNDS = 3
DISABLED = "pushing is disabled (POLAR_SYNC['PUSH_ENABLED'] is False)"


class PushRefused(Exception):
    """Polar cannot take this push as it stands; recorded on the row, never raised further."""


@dataclass
class DrainResult:
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
    stopped: str = ""  # why it ended early, if it did
    no_user: bool = False  # customer_push: no local user has the external ID

    @property
    def pushed(self) -> int:
        return self.created + self.updated + self.adopted + self.deleted + self.already_gone

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pushed": self.pushed}


# The one client cache: per thread and kind, rebuilt when the settings change.
_clients = threading.local()


def push_client(*, inline: bool = False) -> PolarClient:
    """The calling thread's client for pushing. A worker's retries with backoff and
    waits for the shared budget; an inline one (in a web request, after its commit)
    makes one attempt within ``ENQUEUE_TIMEOUT`` and never waits for the budget."""
    conf = polar_settings()
    cache: dict[bool, tuple[Any, PolarClient]] = _clients.__dict__.setdefault("by_kind", {})
    cached = cache.get(inline)
    if cached is not None and cached[0] == conf:
        return cached[1]
    if inline:
        client = PolarClient.from_settings(max_retries=0, timeout=conf.ENQUEUE_TIMEOUT)
        client.before_request = partial(_take_or_raise, Budget.from_settings())
    else:
        client = budgeted_client()
    cache[inline] = (conf, client)
    return client


def _take_or_raise(budget: Budget) -> None:
    if not budget_take(budget=budget, max_wait=0):
        raise PolarRateLimitError(
            "polar_sync's shared request budget is spent for now", operation="push"
        )


def outbox_drain(
    *,
    external_id: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
    client: PolarClient | None = None,
    inline: bool = False,
) -> DrainResult:
    """Push due outbox rows to Polar: one user's, or all. ``force`` ignores backoff;
    ``retry_failed`` first makes failed rows pending again; ``inline``: see push_client."""
    result = DrainResult()
    if not polar_settings().PUSH_ENABLED:
        result.stopped = DISABLED
        return result
    if retry_failed:
        rows.retry_failed(external_id=external_id)
    pending = PushOutbox.objects.filter(status=PushOutbox.Status.PENDING)
    if external_id is not None:
        pending = pending.filter(external_id=external_id)
    if not pending.exists():
        return result  # no client, no request: the common case of a duplicate task
    try:
        client = client or push_client(inline=inline)
    except PolarConfigurationError as exc:
        result.stopped = str(exc)
        logger.error("polar_sync: cannot push: %s", exc)
        return result
    sent_before = client.request_count
    try:
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
        due = list(batch.order_by("pk")[:BATCH])
        for row in due:
            last_pk = row.pk
            postponed = result.postponed
            _drain_row(row=row, client=client, result=result, force=force)
            if result.stopped:  # the token was refused
                return
            transient_in_a_row = transient_in_a_row + 1 if result.postponed > postponed else 0
            if transient_in_a_row >= MAX_CONSECUTIVE_TRANSIENT:
                result.stopped = "Polar is unavailable; the remaining rows wait for the next drain"
                return
        if len(due) < BATCH:
            return


def _drain_row(
    *, row: PushOutbox | None, client: PolarClient, result: DrainResult, force: bool
) -> None:
    """Push one row; re-read and push again (a few times) if it changed meanwhile."""
    for _ in range(MAX_ROUNDS):
        if row is None or row.status != PushOutbox.Status.PENDING:
            return
        if not force and row.next_attempt_at > timezone.now():
            return
        if row.locked_until is not None and row.locked_until > timezone.now():
            result.busy += 1  # another drain's lease holds it
            return
        claimed = rows.claim(row=row)
        if claimed and not _push(row=row, client=client, result=result):
            return
        # Not claimed (it changed since it was read), or changed while pushed: read it again.
        row = PushOutbox.objects.filter(pk=row.pk).first()


def _push(*, row: PushOutbox, client: PolarClient, result: DrainResult) -> bool:
    """Push a claimed row; True when it changed meanwhile (to be pushed again)."""
    if _pushed_already(row):
        result.unchanged += 1
        return rows.complete(row=row)
    try:
        if row.action == PushOutbox.Action.DELETE:
            kind, customer = _delete(client, row.external_id), None
        else:
            kind, customer = _upsert(client, row)
    except (PolarAuthenticationError, PolarTransientError) as exc:
        _postpone(row=row, exc=exc)
        result.postponed += 1
        if isinstance(exc, PolarAuthenticationError):
            # The token, not the row: keep the row pending and stop until it is fixed.
            result.stopped = f"Polar refused the access token: {exc}"
            logger.error("polar_sync: push of %s stopped: %s", row.external_id, exc)
        else:
            logger.warning("polar_sync: push of %s postponed: %s", row.external_id, exc)
        return False
    except (PolarError, PushRefused) as exc:
        rows.release(row=row, exc=exc, delay=0.0, failed=True)
        result.failed.append((row.external_id, str(exc)))
        logger.error("polar_sync: push of %s failed: %s", row.external_id, exc)
        return False
    except BaseException as exc:
        _postpone(row=row, exc=exc)  # a bug or an interrupt: never leave the row leased
        raise
    setattr(result, kind, getattr(result, kind) + 1)
    return _complete(row=row, customer=customer)


def _postpone(*, row: PushOutbox, exc: BaseException) -> None:
    delay = rows.backoff(row.attempts + 1)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, PolarRateLimitError) and retry_after:
        delay = max(float(retry_after), 1.0)
        budget_pause(budget=Budget.from_settings(), seconds=delay)
    rows.release(row=row, exc=exc, delay=delay, failed=False)


def _pushed_already(row: PushOutbox) -> bool:
    """An upsert of what Polar accepted last (a name changed, then changed back)."""
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
        rows.delete_first_done(row=row)
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
    """Record the push in the mirror and complete the row; True when it changed meanwhile."""
    external_id, now = row.external_id, timezone.now()
    with transaction.atomic():
        if row.action == PushOutbox.Action.DELETE or row.delete_first:
            stale = Customer.objects.filter(external_id=external_id, deleted_at__isnull=True)
            kept = customer.get("id") if customer is not None else None
            if kept:
                stale = stale.exclude(id=kept)
            customers_mark_deleted(ids=list(stale.values_list("id", flat=True)), when=now)
        if customer is not None:
            # Polar's answer updates the mirror: no extra GET.
            for failure in customers_upsert(payloads=[customer]).failures:
                logger.warning("polar_sync: pushed %s, cannot mirror it: %s", external_id, failure)
            PushedPayload.objects.update_or_create(
                external_id=external_id, defaults={"payload": row.payload, "pushed_at": now}
            )
        else:
            PushedPayload.objects.filter(external_id=external_id).delete()
        return rows.complete(row=row)
