"""Sending :mod:`polar_sync.signals` after commit, from what the writes already know.

The write paths call these inside their transaction with what they read and wrote
anyway (no extra query): each registers one ``transaction.on_commit`` callback, which
a rollback discards. Nothing is registered when no receiver listens.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from .. import signals
from ..models import Customer, CustomerState, StateBenefitGrant, StateSubscription
from .bulk import Written

logger = logging.getLogger("polar_sync.signals")

JSON = dict[str, Any]


def _send(signal: Signal, sender: type, **kwargs: Any) -> None:
    for receiver, result in signal.send_robust(sender=sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "polar_sync: signal receiver %r failed: %s",
                receiver,
                result,
                exc_info=(type(result), result, result.__traceback__),
            )


def _listened(*candidates: Signal) -> bool:
    return any(s.has_listeners() for s in candidates)


def customers_written(*, rows: Sequence[JSON], written: Written) -> None:
    """customer_created / customer_updated / customer_deleted for an upserted page.

    A row that arrives deleted (``deleted_at`` newly set) sends ``customer_deleted``,
    not ``customer_updated``; one first seen already deleted sends only that.
    """
    if not (written.new or written.changed) or not _listened(
        signals.customer_created, signals.customer_updated, signals.customer_deleted
    ):
        return
    by_id = {row["id"]: row for row in rows}
    sends: list[tuple[Signal, JSON]] = []
    for pk in written.new:
        signal = signals.customer_deleted if by_id[pk]["deleted_at"] else signals.customer_created
        sends.append((signal, {"customer_id": pk}))
    for pk, old in written.changed:
        row = by_id[pk]
        if row["deleted_at"] and not old["deleted_at"]:
            sends.append((signals.customer_deleted, {"customer_id": pk}))
        else:
            changed = frozenset(f for f in old if f in row and row[f] != old[f])
            sends.append((signals.customer_updated, {"customer_id": pk, "changed": changed}))

    def send() -> None:
        for signal, kwargs in sends:
            _send(signal, Customer, **kwargs)

    transaction.on_commit(send)


def customers_deleted(*, ids: Iterable[uuid.UUID]) -> None:
    """customer_deleted for customers just marked deleted."""
    ids = list(ids)
    if not ids or not _listened(signals.customer_deleted):
        return

    def send() -> None:
        for pk in ids:
            _send(signals.customer_deleted, Customer, customer_id=pk)

    transaction.on_commit(send)


def state_replaced(
    *,
    customer_id: uuid.UUID,
    old_subscriptions: Sequence[StateSubscription],
    new_subscriptions: Sequence[StateSubscription],
    old_grants: Sequence[StateBenefitGrant],
    new_grants: Sequence[StateBenefitGrant],
    changed: bool,
) -> None:
    """Diff a customer's old and new state by subscription and grant ID; send each
    start, end, grant and revocation, then customer_state_changed when ``changed``
    (or when any of those happened)."""
    if not _listened(
        signals.subscription_started,
        signals.subscription_ended,
        signals.benefit_granted,
        signals.benefit_revoked,
        signals.customer_state_changed,
    ):
        return
    old_subs = {s.subscription_id for s in old_subscriptions}
    new_subs = {s.subscription_id for s in new_subscriptions}
    old_ids = {g.grant_id for g in old_grants}
    new_ids = {g.grant_id for g in new_grants}
    started = [s for s in new_subscriptions if s.subscription_id not in old_subs]
    ended = [s for s in old_subscriptions if s.subscription_id not in new_subs]
    granted = [g for g in new_grants if g.grant_id not in old_ids]
    revoked = [g for g in old_grants if g.grant_id not in new_ids]
    if not (changed or started or ended or granted or revoked):
        return
    who = {"customer_id": customer_id}

    def send() -> None:
        for s in started:
            _send(signals.subscription_started, StateSubscription, subscription=s, **who)
        for s in ended:
            _send(signals.subscription_ended, StateSubscription, subscription=s, **who)
        for g in granted:
            _send(signals.benefit_granted, StateBenefitGrant, grant=g, **who)
        for g in revoked:
            _send(signals.benefit_revoked, StateBenefitGrant, grant=g, **who)
        _send(
            signals.customer_state_changed,
            CustomerState,
            **who,
            subscriptions_started=started,
            subscriptions_ended=ended,
            benefits_granted=granted,
            benefits_revoked=revoked,
        )

    transaction.on_commit(send)
