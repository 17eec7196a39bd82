"""Reads that put product and benefit names next to the IDs of state rows.

Each name is a subquery of the row's own query (``product_name`` / ``benefit_name``,
None when the mirror has no such product or benefit), so showing names costs no
query per row.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from .models import Benefit, Product, StateBenefitGrant, StateSubscription


def product_name() -> Subquery:
    return Subquery(Product.objects.filter(pk=OuterRef("product_id")).values("name")[:1])


def benefit_name() -> Subquery:
    return Subquery(Benefit.objects.filter(pk=OuterRef("benefit_id")).values("description")[:1])


def subscriptions_named(qs: QuerySet[StateSubscription]) -> QuerySet[StateSubscription]:
    return qs.annotate(product_name=product_name())


def grants_named(qs: QuerySet[StateBenefitGrant]) -> QuerySet[StateBenefitGrant]:
    return qs.annotate(benefit_name=benefit_name())


def named(name: str | None, pk: Any) -> str:
    """``Name (id)`` when the name is known, else the bare ID."""
    return f"{name} ({pk})" if name else str(pk)


def customer_product_choices(*, limit: int = 200) -> list[tuple[uuid.UUID, str | None]]:
    """Products customers subscribe to, with their names: a filter's choices, one query."""
    rows = (
        StateSubscription.objects.order_by("product_id")
        .values("product_id")
        .distinct()
        .annotate(name=product_name())
        .values_list("product_id", "name")
    )
    return list(rows[:limit])


def customer_benefit_choices(*, limit: int = 200) -> list[tuple[uuid.UUID, str | None]]:
    """Benefits granted to customers, with their names: a filter's choices, one query."""
    rows = (
        StateBenefitGrant.objects.order_by("benefit_id")
        .values("benefit_id")
        .distinct()
        .annotate(name=benefit_name())
        .values_list("benefit_id", "name")
    )
    return list(rows[:limit])
