"""Reads of the mirror: entitlement helpers and the queries behind the admin and the API.

Entitlement helpers answer from the local database in one query each (none for an
anonymous user). A user's customer is the live Polar customer linked to them, the
newest if several; a user linked to members of team customers (2026 API versions) also
holds what those teams hold: their active subscriptions and granted benefits count as
the user's, in the same single query. A subscription is active when it is in the customer's state
(Polar lists only ``active`` and ``trialing`` ones) and its ``ends_at``, if any,
is ahead: one cancelled at the period's end stops counting when the period ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .catalog_selectors import grants_named, subscriptions_named
from .models import (
    Customer,
    CustomerBalance,
    CustomerQuerySet,
    CustomerState,
    Member,
    StateBenefitGrant,
    StateSubscription,
)


def polar_uuid(value: Any, *, what: str) -> uuid.UUID:
    """``value`` as a UUID, or a ValueError naming what was expected."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise ValueError(f"{what} must be a Polar UUID, got {value!r}") from None


def _signed_in(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False))


# -- entitlements -------------------------------------------------------------------------


def _user_customers(user: Any) -> QuerySet[Customer]:
    """The user's own customers and the teams they are a member of (a subquery: one
    query in all). Entitlement queries start from the user's indexes: a handful of
    rows, whatever a benefit's popularity."""
    teams = Member.objects.filter(user=user).values("customer_id")
    return Customer.objects.filter(Q(user=user) | Q(pk__in=teams), deleted_at__isnull=True)


def user_has_active_subscription(user: Any, product_id: Any = None) -> bool:
    """Whether ``user``'s customer has an active subscription (to ``product_id`` if given)."""
    product = None if product_id is None else polar_uuid(product_id, what="product_id")
    if not _signed_in(user):
        return False
    return _user_customers(user).filter(active_subscription_exists(product_id=product)).exists()


def user_has_benefit(user: Any, benefit_id: Any) -> bool:
    """Whether ``user``'s customer currently holds a grant of the benefit ``benefit_id``."""
    benefit = polar_uuid(benefit_id, what="benefit_id")
    if not _signed_in(user):
        return False
    grants = StateBenefitGrant.objects.filter(customer=OuterRef("pk"), benefit_id=benefit)
    return _user_customers(user).filter(Exists(grants)).exists()


@dataclass(frozen=True)
class CustomerStateSnapshot:
    """A user's customer with its state and balance (None when never fetched).

    The lists are Polar's own CustomerState payload, with every field Polar sends;
    ``subscriptions`` and ``granted_benefits`` add those of ``team_states``, the states
    of the team customers the user is a member of. ``customer`` is the user's own
    customer, or their newest team when they have none.
    """

    customer: Customer
    state: CustomerState | None
    balance: CustomerBalance | None
    now: datetime = field(default_factory=timezone.now, repr=False)
    team_states: tuple[CustomerState, ...] = ()

    def _all(self, key: str) -> list[Any]:
        states = [s for s in (self.state, *self.team_states) if s is not None]
        return [item for s in states for item in s.raw.get(key, [])]

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        """Active subscriptions (those whose ``ends_at`` has passed are left out)."""
        raw = self._all("active_subscriptions")
        return [s for s in raw if isinstance(s, dict) and self._running(s.get("ends_at"))]

    @property
    def granted_benefits(self) -> list[dict[str, Any]]:
        return self._all("granted_benefits")

    @property
    def active_meters(self) -> list[dict[str, Any]]:
        return list(self.state.raw.get("active_meters", [])) if self.state else []

    @property
    def benefit_ids(self) -> set[str]:
        return {str(g.get("benefit_id")) for g in self.granted_benefits if isinstance(g, dict)}

    @property
    def product_ids(self) -> set[str]:
        return {str(s.get("product_id")) for s in self.subscriptions}

    @property
    def synced_at(self) -> datetime | None:
        return self.state.synced_at if self.state else None

    def has_active_subscription(self, product_id: Any = None) -> bool:
        if product_id is None:
            return bool(self.subscriptions)
        return str(polar_uuid(product_id, what="product_id")) in self.product_ids

    def has_benefit(self, benefit_id: Any) -> bool:
        return str(polar_uuid(benefit_id, what="benefit_id")) in self.benefit_ids

    def _running(self, ends_at: Any) -> bool:
        if not ends_at:
            return True
        moment = parse_datetime(str(ends_at))
        return moment is None or moment > self.now


def user_customer_state(user: Any) -> CustomerStateSnapshot | None:
    """``user``'s customer, its state and its balance, with the states of the teams the
    user is a member of, in one query; None when it has neither."""
    if not _signed_in(user):
        return None
    rows = list(_user_customers(user).select_related("state", "balance").order_by("-created_at"))
    own = [c for c in rows if c.user_id == user.pk]
    if not rows:
        return None
    customer = (own or rows)[0]
    teams = [c for c in rows if c.user_id != user.pk]
    return CustomerStateSnapshot(
        customer=customer,
        state=related_or_none(customer, "state"),
        balance=related_or_none(customer, "balance"),
        team_states=tuple(
            s for c in teams if c is not customer and (s := related_or_none(c, "state"))
        ),
    )


@dataclass(frozen=True)
class Team:
    """A team customer the user is a member of, and the user's role in it."""

    customer_id: uuid.UUID
    name: str | None
    role: str


def user_teams(*, user: Any) -> list[Team]:
    """The live team customers ``user`` is a member of (one query), newest first."""
    if not _signed_in(user):
        return []
    rows = (
        Member.objects.filter(user=user, customer__deleted_at__isnull=True)
        .order_by("-customer__created_at")
        .values_list("customer_id", "customer__name", "role")
    )
    return [Team(customer_id=c, name=n, role=r) for c, n, r in rows]


def related_or_none(obj: Any, name: str) -> Any:
    """A reverse one-to-one (``state``, ``balance``), or None when there is no such row."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


# -- lists for the admin and the API ------------------------------------------------------


def running_subscriptions() -> QuerySet[StateSubscription]:
    """Mirrored subscriptions that still count as active (their ``ends_at`` is ahead)."""
    return StateSubscription.objects.filter(Q(ends_at__isnull=True) | Q(ends_at__gt=timezone.now()))


def active_subscription_exists(product_id: uuid.UUID | None = None) -> Exists:
    """``Exists`` over a customer's running subscriptions (to ``product_id`` if given)."""
    subscriptions = running_subscriptions().filter(customer=OuterRef("pk"))
    if product_id is not None:
        subscriptions = subscriptions.filter(product_id=product_id)
    return Exists(subscriptions)


def customers_for_list(qs: QuerySet[Customer]) -> QuerySet[Customer]:
    """``qs`` with state, balance and user joined, and each customer's running
    subscriptions and grants in ``running_subscriptions`` / ``benefit_grants``:
    two more queries, whatever the rows. Replaces any earlier prefetch.
    """
    return (
        qs.select_related("state", "balance", "user")
        .prefetch_related(None)
        .prefetch_related(
            Prefetch(
                "active_subscriptions",
                queryset=subscriptions_named(
                    running_subscriptions().only("id", "customer_id", "product_id")
                ),
                to_attr="running_subscriptions",
            ),
            Prefetch(
                "granted_benefits",
                queryset=grants_named(
                    StateBenefitGrant.objects.only("id", "customer_id", "benefit_id")
                ),
                to_attr="benefit_grants",
            ),
        )
    )


def customer_list(
    *,
    email: str | None = None,
    external_id: str | None = None,
    active_subscription: bool | None = None,
    product_id: uuid.UUID | None = None,
    benefit_id: uuid.UUID | None = None,
    deleted: bool | None = False,
) -> QuerySet[Customer]:
    """Customers with state and balance joined, filtered; one query per page of rows.

    ``deleted``: False keeps live customers (as Polar's list), True deleted ones, None both.
    """
    qs = Customer.objects.select_related("state", "balance").annotate(
        has_active_subscription=active_subscription_exists()
    )
    if deleted is not None:
        qs = qs.filter(deleted_at__isnull=not deleted)
    if email:
        qs = qs.filter(email__iexact=email)
    if external_id:
        qs = qs.filter(external_id=external_id)
    if active_subscription is not None:
        qs = qs.filter(has_active_subscription=active_subscription)
    if product_id is not None:
        qs = qs.filter(
            Exists(StateSubscription.objects.filter(customer=OuterRef("pk"), product_id=product_id))
        )
    if benefit_id is not None:
        qs = qs.filter(
            Exists(StateBenefitGrant.objects.filter(customer=OuterRef("pk"), benefit_id=benefit_id))
        )
    return qs


def customer_detail_queryset() -> CustomerQuerySet:
    """Customers with everything a detail view shows, in a constant number of queries."""
    return (
        Customer.objects.select_related("state", "balance", "user")
        .prefetch_related(
            Prefetch("active_subscriptions", subscriptions_named(StateSubscription.objects.all())),
            Prefetch("granted_benefits", grants_named(StateBenefitGrant.objects.all())),
            "active_meters",
        )
        .annotate(has_active_subscription=active_subscription_exists())
    )


def user_customer(*, user: Any) -> Customer | None:
    """``user``'s live customer with its state rows, or None."""
    if not _signed_in(user):
        return None
    return customer_detail_queryset().active().filter(user=user).order_by("-created_at").first()


def customer_product_ids(*, limit: int = 200) -> list[uuid.UUID]:
    """Products customers subscribe to, for a filter's choices."""
    rows = StateSubscription.objects.order_by("product_id").values_list("product_id", flat=True)
    return list(rows.distinct()[:limit])


def customer_benefit_types() -> list[str]:
    """Benefit types present in the mirror, for a filter's choices."""
    rows = StateBenefitGrant.objects.order_by("benefit_type").values_list("benefit_type", flat=True)
    return list(rows.distinct())
