"""Small factories for mirror rows, built through the real mapping functions."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

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

_seq = itertools.count(1)


def customer_payload(**overrides: Any) -> dict[str, Any]:
    n = next(_seq)
    payload = load_fixture("customer")
    payload.update(
        id=str(uuid.uuid4()),
        email=f"customer{n}@example.com",
        external_id=f"ext_{n}",
        name=f"Customer {n}",
    )
    payload.update(overrides)
    return payload


def make_customer(**overrides: Any) -> Customer:
    fields = mapping.customer_fields(customer_payload(**overrides))
    return Customer.objects.create(synced_at=timezone.now(), **fields)


def make_state(
    customer: Customer, *, product_id: str | None = None, benefit_id: str | None = None
) -> CustomerState:
    """Give ``customer`` the fixture state's rows, optionally retargeted."""
    payload = load_fixture("state")
    payload["id"] = str(customer.pk)
    for sub in payload["active_subscriptions"]:
        sub["id"] = str(uuid.uuid4())
        if product_id:
            sub["product_id"] = product_id
    for grant in payload["granted_benefits"]:
        grant["id"] = str(uuid.uuid4())
        if benefit_id:
            grant["benefit_id"] = benefit_id
    for meter in payload["active_meters"]:
        meter["id"] = str(uuid.uuid4())
    _c, subs, grants, meters = mapping.state_rows(payload)
    StateSubscription.objects.bulk_create(StateSubscription(customer=customer, **s) for s in subs)
    StateBenefitGrant.objects.bulk_create(StateBenefitGrant(customer=customer, **g) for g in grants)
    StateMeter.objects.bulk_create(StateMeter(customer=customer, **m) for m in meters)
    return CustomerState.objects.create(customer=customer, raw=payload, synced_at=timezone.now())


def make_balance(customer: Customer, cents: int = 2500) -> CustomerBalance:
    return CustomerBalance.objects.create(
        customer=customer, balance=cents, currency="usd", synced_at=timezone.now()
    )
