"""Helpers for the admin, API and entitlement tests: users linked to mirrored customers."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from polar_sync import mapping
from polar_sync.models import (
    Customer,
    CustomerBalance,
    CustomerState,
    StateBenefitGrant,
    StateMeter,
    StateSubscription,
)
from tests.conftest import load_fixture
from tests.factories import customer_payload, make_customer

_seq = itertools.count(1)

PRODUCT = "d8dd2de1-21b7-4a41-8bc3-ce909c0cfe23"  # the fixture state's running subscription
ENDED_PRODUCT = "0c4f8a9e-55b5-4c0e-9a8d-3f2e1d0c9b8a"  # its ends_at passed in 2025-02
BENEFIT = "397a17aa-15cf-4cb4-9333-18040203cf98"  # a license_keys grant in the fixture state
OTHER = "99999999-8888-4777-8666-555555555555"


def make_user(*, staff: bool = False, superuser: bool = False, perms: tuple[str, ...] = ()) -> Any:
    """A user; ``perms`` are codenames of polar_sync permissions, e.g. ``"view_customer"``."""
    n = next(_seq)
    user = get_user_model().objects.create_user(
        username=f"user{n}",
        email=f"user{n}@example.com",
        password="pw",
        is_staff=staff or superuser,
        is_superuser=superuser,
    )
    if perms:
        user.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="polar_sync", codename__in=perms)
        )
    return user


def linked_customer(user: Any, **payload: Any) -> Customer:
    """A mirrored customer linked to ``user`` (its external ID is the user's pk)."""
    customer = make_customer(external_id=str(user.pk), **payload)
    Customer.objects.filter(pk=customer.pk).update(user=user)
    customer.refresh_from_db()
    return customer


def bulk_customers(n: int, *, with_state: bool = True) -> list[Customer]:
    """``n`` customers with the fixture state and a balance, written in a few bulk queries."""
    now = timezone.now()
    customers = [
        Customer(**mapping.customer_fields(customer_payload()), synced_at=now) for _ in range(n)
    ]
    Customer.objects.bulk_create(customers, batch_size=500)
    if not with_state:
        return customers
    subs, grants, meters, states, balances = [], [], [], [], []
    template = load_fixture("state")
    for customer in customers:
        payload = {**template, "id": str(customer.pk)}
        for key in ("active_subscriptions", "granted_benefits", "active_meters"):
            payload[key] = [{**item, "id": str(uuid.uuid4())} for item in template[key]]
        _c, s, g, m = mapping.state_rows(payload)
        subs += [StateSubscription(customer=customer, **row) for row in s]
        grants += [StateBenefitGrant(customer=customer, **row) for row in g]
        meters += [StateMeter(customer=customer, **row) for row in m]
        states.append(CustomerState(customer=customer, raw=payload, synced_at=now))
        balances.append(
            CustomerBalance(customer=customer, balance=500, currency="usd", synced_at=now)
        )
    for model, rows in (
        (StateSubscription, subs),
        (StateBenefitGrant, grants),
        (StateMeter, meters),
        (CustomerState, states),
        (CustomerBalance, balances),
    ):
        model.objects.bulk_create(rows, batch_size=500)
    return customers
