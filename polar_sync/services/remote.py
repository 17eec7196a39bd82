"""Operator actions that act on Polar itself (the admin's doors call these)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from django.db import transaction

from ..client import PolarClient
from ..exceptions import PolarNotFoundError
from .budget import budgeted_client
from .customers import customers_mark_deleted
from .states import customer_state_clear

logger = logging.getLogger("polar_sync.remote")


def customer_delete_in_polar(
    *, customer_id: uuid.UUID | str, client: PolarClient | None = None
) -> bool:
    """Delete a customer in Polar (which cancels its subscriptions, revokes its benefits
    and frees its external ID), then mark it deleted in the mirror and clear its state.

    False when Polar had already deleted it (the mirror follows all the same); any
    other :class:`~polar_sync.exceptions.PolarError` leaves the mirror untouched.
    """
    pk = uuid.UUID(str(customer_id))
    client = budgeted_client(client=client)
    existed = True
    try:
        client.delete(str(pk))
    except PolarNotFoundError:
        existed = False
        logger.info("customer %s was already deleted in Polar", pk)
    with transaction.atomic():
        customers_mark_deleted(ids=[pk])
        customer_state_clear(customer_id=pk)
    return existed


def customer_in_polar_get(
    *, external_id: str, client: PolarClient | None = None
) -> dict[str, Any] | None:
    """The live Polar customer with this external ID, as Polar sends it; None if none."""
    try:
        return budgeted_client(client=client).get_external(external_id)
    except PolarNotFoundError:
        return None


def customers_export_stream(*, client: PolarClient | None = None) -> Iterator[bytes]:
    """Polar's own CSV export, as byte chunks (nothing is stored). The request is sent
    on the first ``next()``: a caller learns whether Polar answers before it responds."""
    return budgeted_client(client=client).export_stream()
