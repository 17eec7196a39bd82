"""Customer states and balances: applying payloads and refreshing them within budget."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from ..client import PolarClient
from ..conf import polar_settings
from ..exceptions import (
    PolarAuthenticationError,
    PolarEndpointNotAvailableError,
    PolarError,
    PolarNotFoundError,
    PolarPermanentError,
)
from ..mapping import MappingError, balance_fields, state_rows
from ..models import (
    Customer,
    CustomerBalance,
    CustomerState,
    StateBenefitGrant,
    StateMeter,
    StateSubscription,
    SyncRun,
)
from ..status_selectors import customers_by_freshness
from .announce import state_replaced
from .budget import Clock, budget_pause_on_rate_limit, budgeted_client
from .customers import customers_mark_deleted, customers_upsert
from .runs import sync_run_crashed, sync_run_finish, sync_run_save_progress, sync_run_start

logger = logging.getLogger("polar_sync.sync")
# The lists of a CustomerState payload, stored as rows of their own.
STATE_LISTS = ("active_subscriptions", "granted_benefits", "active_meters")


def customer_state_apply(*, payload: Any, skip_older: bool = False) -> uuid.UUID:
    """Upsert the customer a CustomerState payload carries, then replace its state as
    a whole, in one transaction; returns the customer's id.

    What changed (subscriptions and grants, by ID) is sent as signals after commit.
    """
    customer, subs, grants, meters = state_rows(payload)  # validate before writing
    pk = customer["id"]
    with transaction.atomic():
        customer_part = {k: v for k, v in payload.items() if k not in STATE_LISTS}
        customers_upsert(payloads=[customer_part], skip_older=skip_older)
        # Two writers of one state take turns, so that each change is diffed once.
        _lock(customer_id=pk)
        # Most refreshes find nothing new: then only the freshness moves.
        if CustomerState.objects.filter(customer_id=pk, raw=payload).update(
            synced_at=timezone.now()
        ):
            return pk
        old_raw = CustomerState.objects.filter(customer_id=pk).values_list("raw", flat=True)
        changed = _lists(old_raw.first()) != _lists(payload)
        old_subs, old_grants = _state_delete(customer_id=pk)
        new_subs = StateSubscription.objects.bulk_create(
            StateSubscription(customer_id=pk, **s) for s in subs
        )
        new_grants = StateBenefitGrant.objects.bulk_create(
            StateBenefitGrant(customer_id=pk, **g) for g in grants
        )
        StateMeter.objects.bulk_create(StateMeter(customer_id=pk, **m) for m in meters)
        CustomerState.objects.update_or_create(
            customer_id=pk, defaults={"raw": payload, "synced_at": timezone.now()}
        )
        state_replaced(
            customer_id=pk,
            old_subscriptions=old_subs,
            new_subscriptions=new_subs,
            old_grants=old_grants,
            new_grants=new_grants,
            changed=changed,
        )
    return pk


def _lock(*, customer_id: uuid.UUID) -> None:
    list(Customer.objects.select_for_update().filter(pk=customer_id).values_list("pk"))


def _lists(raw: Any) -> dict[str, Any]:
    """A state's lists, each by ID: what a change of the state as a whole compares."""
    raw = raw if isinstance(raw, dict) else {}
    return {
        key: {str(item.get("id")): item for item in raw.get(key) or [] if isinstance(item, dict)}
        for key in STATE_LISTS
    }


def _state_delete(
    *, customer_id: uuid.UUID
) -> tuple[list[StateSubscription], list[StateBenefitGrant]]:
    """Delete a customer's state rows; returns the subscriptions and grants it held."""
    subs = list(StateSubscription.objects.filter(customer_id=customer_id))
    grants = list(StateBenefitGrant.objects.filter(customer_id=customer_id))
    StateSubscription.objects.filter(customer_id=customer_id).delete()
    StateBenefitGrant.objects.filter(customer_id=customer_id).delete()
    StateMeter.objects.filter(customer_id=customer_id).delete()
    return subs, grants


def customer_state_clear(*, customer_id: uuid.UUID) -> None:
    """Empty a customer's state (Polar cancels and revokes everything on delete).

    The stored payload keeps the customer but loses its lists, so that the mirror's
    rows and its payload agree, and a later state is compared with the empty one.
    """
    with transaction.atomic():
        _lock(customer_id=customer_id)
        old_subs, old_grants = _state_delete(customer_id=customer_id)
        state = CustomerState.objects.filter(customer_id=customer_id).first()
        changed = state is not None and any(state.raw.get(k) for k in STATE_LISTS)
        if state is not None and changed:
            state.raw = {**state.raw, **{k: [] for k in STATE_LISTS}}
            state.save(update_fields=["raw"])
        state_replaced(
            customer_id=customer_id,
            old_subscriptions=old_subs,
            new_subscriptions=[],
            old_grants=old_grants,
            new_grants=[],
            changed=changed,
        )


def customer_state_refresh(
    *, customer_id: uuid.UUID | str, client: PolarClient
) -> uuid.UUID | None:
    """Fetch one customer's state and apply it; a 404 marks the customer deleted."""
    try:
        payload = client.get_state(str(customer_id))
    except PolarNotFoundError:
        customers_mark_deleted(ids=[uuid.UUID(str(customer_id))])
        customer_state_clear(customer_id=uuid.UUID(str(customer_id)))
        return None
    return customer_state_apply(payload=payload)


def customer_balance_refresh(
    *, customer_id: uuid.UUID | str, client: PolarClient
) -> CustomerBalance | None:
    """Fetch one customer's balance and store it; a 404 marks the customer deleted.

    Raises :class:`PolarEndpointNotAvailableError` when the server has no ``/balance``.
    """
    try:
        payload = client.get_balance(str(customer_id))
    except PolarNotFoundError:
        customers_mark_deleted(ids=[uuid.UUID(str(customer_id))])
        return None
    fields = balance_fields(payload, customer_id=customer_id)
    balance, _ = CustomerBalance.objects.update_or_create(
        customer_id=customer_id, defaults={**fields, "synced_at": timezone.now()}
    )
    return balance


def customers_due(*, kind: str) -> QuerySet[Customer]:
    """Active customers whose state (or balance) is missing or stale, missing first."""
    name = "state" if kind == SyncRun.Kind.STATES else "balance"
    field = f"{name}__synced_at"
    return customers_by_freshness(Customer.objects.active(), kind=name, freshness="stale").order_by(
        F(field).asc(nulls_first=True), "created_at"
    )


def balance_endpoint_missing() -> bool:
    """Whether the last balance run found no ``/balance`` route, recently enough to trust it."""
    last = (
        SyncRun.objects.filter(kind=SyncRun.Kind.BALANCES)
        .exclude(status=SyncRun.Status.RUNNING)
        .first()
    )
    if last is None or not last.endpoint_missing or last.finished_at is None:
        return False
    recheck_after = timedelta(seconds=polar_settings().BALANCE_REFRESH_INTERVAL)
    return timezone.now() - last.finished_at < recheck_after


def balances_unavailable() -> str:
    """Why balances are not refreshed now ("" when they are): the 2026 API versions have
    no ``/balance`` (no request is spent on it), or the last run found none."""
    conf = polar_settings()
    if not conf.has_balance:
        return (
            f"API version {conf.API_VERSION} has no /balance (only a server of the 2025-10 "
            "era, API_VERSION=None, has one); the stored balances are kept"
        )
    if balance_endpoint_missing():
        return "the server had no /balance at the last balance run; asked again later"
    return ""


def _refresh_run(
    *,
    kind: str,
    refresh_one: Callable[..., Any],
    client: PolarClient | None,
    max_requests: int | None,
    progress: Callable[[SyncRun], None] | None,
    clock: Clock | None = None,
) -> SyncRun | None:
    # The client first: a configuration error must not leave a run holding the lock.
    client = budgeted_client(client=client, clock=clock)
    run = sync_run_start(kind=kind, client=client)
    if run is None:
        return None
    sent_before = client.request_count
    due = customers_due(kind=kind)
    run.total_count = due.count()
    limit = run.total_count if max_requests is None else min(run.total_count, max_requests)
    status, error = SyncRun.Status.SUCCEEDED, ""
    try:
        for customer_id in due.values_list("id", flat=True)[:limit]:
            if max_requests is not None and client.request_count - sent_before >= max_requests:
                break
            try:
                result = refresh_one(customer_id=customer_id, client=client)
            except (MappingError, PolarPermanentError) as exc:
                # A refused token (or a missing scope) fails every customer alike: stop.
                if isinstance(exc, PolarEndpointNotAvailableError | PolarAuthenticationError):
                    raise
                run.failed += 1
                run.error = f"{customer_id}: {exc}"
                logger.warning("%s refresh of %s failed: %s", kind, customer_id, exc)
            else:
                if result is None:
                    run.deleted += 1
                else:
                    run.updated += 1
            run.requests = client.request_count - sent_before
            sync_run_save_progress(run=run)
            if progress:
                progress(run)
    except PolarEndpointNotAvailableError as exc:
        if kind == SyncRun.Kind.BALANCES:
            run.endpoint_missing = True
            wait = polar_settings().BALANCE_REFRESH_INTERVAL
            error = f"{exc}: not asking again for {wait:.0f}s"
            logger.warning("%s", error)
        else:  # every route 404s: the server does not support the API version asked for
            status, error = SyncRun.Status.FAILED, str(exc)
            logger.error("%s refresh stopped: %s", kind, exc)
    except PolarError as exc:
        budget_pause_on_rate_limit(exc)
        status, error = SyncRun.Status.FAILED, str(exc)
        logger.error("%s refresh stopped: %s", kind, exc)
    except Exception as exc:
        sync_run_crashed(run=run, exc=exc)
        raise
    run.requests = client.request_count - sent_before
    if status == SyncRun.Status.SUCCEEDED and run.failed:
        status, error = SyncRun.Status.PARTIAL, run.error
    return sync_run_finish(run=run, status=status, error=error, client=client)


def states_refresh(
    *,
    client: PolarClient | None = None,
    max_requests: int | None = None,
    progress: Callable[[SyncRun], None] | None = None,
    clock: Clock | None = None,
) -> SyncRun | None:
    """Refresh stale states, never-fetched first, spending at most ``max_requests``
    from the request budget all workers share (``clock``: the budget's)."""
    return _refresh_run(
        kind=SyncRun.Kind.STATES,
        refresh_one=customer_state_refresh,
        client=client,
        max_requests=max_requests,
        progress=progress,
        clock=clock,
    )


def balances_refresh(
    *,
    client: PolarClient | None = None,
    max_requests: int | None = None,
    progress: Callable[[SyncRun], None] | None = None,
    clock: Clock | None = None,
) -> SyncRun | None:
    """Refresh stale balances like :func:`states_refresh`; None, without a request, when
    :func:`balances_unavailable` says why not (see the log)."""
    reason = balances_unavailable()
    if reason:
        logger.info("balance refresh skipped: %s", reason)
        return None
    return _refresh_run(
        kind=SyncRun.Kind.BALANCES,
        refresh_one=customer_balance_refresh,
        client=client,
        max_requests=max_requests,
        progress=progress,
        clock=clock,
    )


def customer_refresh(*, customer_id: uuid.UUID | str, client: PolarClient | None = None) -> None:
    """Refresh one customer now: its state (which carries the customer) and its balance."""
    client = budgeted_client(client=client)
    if customer_state_refresh(customer_id=customer_id, client=client) is None:
        return
    if not balances_unavailable():
        try:
            customer_balance_refresh(customer_id=customer_id, client=client)
        except PolarEndpointNotAvailableError:
            logger.info("no /balance on this server; %s refreshed without balance", customer_id)
