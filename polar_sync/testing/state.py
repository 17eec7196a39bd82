"""Customer state pieces (subscriptions, benefit grants, meters) and the product catalog.

Every builder returns the exact Polar JSON shape of its schema (CustomerStateSubscription,
CustomerStateBenefitGrant, CustomerStateMeter), with every required key present.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import constants as c
from .records import StateRecord, iso, to_us, uuid4_from

DAY_US = 86_400 * 1_000_000


def add_interval(us: int, interval: str, count: int = 1) -> int:
    """``us`` moved ``count`` recurring intervals later (calendar months and years)."""
    if interval == "day":
        return us + count * DAY_US
    if interval == "week":
        return us + count * 7 * DAY_US
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return to_us(moment.replace(year=year, month=month, day=day))


def subscription_meter(
    *,
    meter_id: str,
    id: str,
    now: int,
    consumed_units: float = 0,
    credited_units: int = 0,
    amount: int = 0,
) -> dict[str, Any]:
    return {
        "created_at": iso(now),
        "modified_at": None,
        "id": id,
        "consumed_units": consumed_units,
        "credited_units": credited_units,
        "amount": amount,
        "meter_id": meter_id,
    }


def subscription(
    *,
    id: str,
    now: int,
    product_id: str,
    amount: int,
    currency: str,
    recurring_interval: str,
    status: str,
    started_us: int,
    meters: list[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    discount_id: str | None = None,
    trial_days: int = 14,
) -> dict[str, Any]:
    """An active (or trialing) subscription whose current period contains ``now``."""
    if status not in c.SUBSCRIPTION_STATUSES:
        raise ValueError(f"status must be one of {c.SUBSCRIPTION_STATUSES}, not {status!r}")
    if recurring_interval not in c.RECURRING_INTERVALS:
        raise ValueError(f"recurring_interval must be one of {c.RECURRING_INTERVALS}")
    trial_start = trial_end = None
    if status == "trialing":
        trial_start, trial_end = started_us, started_us + trial_days * DAY_US
        period_start, period_end = trial_start, trial_end
    else:
        period_start = started_us
        period_end = add_interval(period_start, recurring_interval)
        while period_end <= now:
            period_start, period_end = period_end, add_interval(period_end, recurring_interval)
    return {
        "id": id,
        "created_at": iso(started_us),
        "modified_at": iso(now) if now > started_us else None,
        "custom_field_data": {},
        "metadata": dict(metadata or {}),
        "status": status,
        "amount": amount,
        "currency": currency,
        "recurring_interval": recurring_interval,
        "current_period_start": iso(period_start),
        "current_period_end": iso(period_end),
        "trial_start": iso(trial_start),
        "trial_end": iso(trial_end),
        "cancel_at_period_end": False,
        "canceled_at": None,
        "started_at": iso(started_us),
        "ends_at": None,
        "product_id": product_id,
        "discount_id": discount_id,
        "meters": meters,
    }


def default_properties(benefit_type: str, rng: random.Random) -> dict[str, Any]:
    """Grant properties matching the BenefitGrant*Properties schema of ``benefit_type``."""
    if benefit_type == "discord":
        account = str(rng.getrandbits(60))
        return {
            "account_id": account,
            "guild_id": str(rng.getrandbits(60)),
            "role_id": str(rng.getrandbits(60)),
            "granted_account_id": account,
        }
    if benefit_type == "github_repository":
        account = f"gh-user-{rng.getrandbits(24)}"
        return {
            "account_id": account,
            "repository_owner": "acme",
            "repository_name": rng.choice(("sdk", "pro-templates", "private-docs")),
            "permission": rng.choice(c.GITHUB_PERMISSIONS[:3]),
            "granted_account_id": account,
        }
    if benefit_type == "downloadables":
        return {"files": [uuid4_from(rng) for _ in range(rng.randint(1, 3))]}
    if benefit_type == "license_keys":
        key = f"{rng.getrandbits(128):032X}"
        return {"license_key_id": uuid4_from(rng), "display_key": f"****-{key[-6:]}"}
    if benefit_type in ("custom", "meter_credit"):
        return {}
    raise ValueError(f"benefit_type must be one of {c.BENEFIT_TYPES}, not {benefit_type!r}")


def grant(
    *,
    id: str,
    now: int,
    benefit_id: str,
    benefit_type: str,
    properties: dict[str, Any],
    benefit_metadata: dict[str, Any] | None = None,
    granted_us: int | None = None,
) -> dict[str, Any]:
    granted = now if granted_us is None else granted_us
    return {
        "id": id,
        "created_at": iso(granted),
        "modified_at": None,
        "granted_at": iso(granted),
        "benefit_id": benefit_id,
        "benefit_type": benefit_type,
        "benefit_metadata": dict(benefit_metadata or {}),
        "properties": properties,
    }


def meter(
    *,
    id: str,
    now: int,
    meter_id: str,
    consumed_units: float,
    credited_units: int,
    created_us: int | None = None,
) -> dict[str, Any]:
    created = now if created_us is None else created_us
    return {
        "id": id,
        "created_at": iso(created),
        "modified_at": iso(now) if now > created else None,
        "meter_id": meter_id,
        "consumed_units": consumed_units,
        "credited_units": credited_units,
        "balance": credited_units - consumed_units,
    }


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    amount: int
    currency: str
    recurring_interval: str
    benefit_ids: tuple[str, ...]
    meter_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Benefit:
    id: str
    type: str
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """What a seeded organization sells: products, their benefits and meters."""

    products: tuple[Product, ...]
    benefits: dict[str, Benefit]
    meters: dict[str, str]  # meter id -> name

    @classmethod
    def generate(cls, seed: int) -> Catalog:
        rng = random.Random(f"catalog-{seed}")
        meters = {uuid4_from(rng): "API requests", uuid4_from(rng): "Storage (GB)"}
        meter_ids = tuple(meters)
        specs: list[tuple[str, str, dict[str, Any]]] = [
            ("custom", "Priority support", {"tier": "priority"}),
            ("discord", "Discord community role", {}),
            ("github_repository", "Private repository access", {"repo": "acme/pro"}),
            ("downloadables", "Desktop app downloads", {}),
            ("license_keys", "License key", {"seats": 1}),
            ("meter_credit", "Monthly API credits", {"units": 10_000}),
        ]
        benefits = {}
        for kind, description, metadata in specs:
            benefit = Benefit(uuid4_from(rng), kind, description, metadata)
            benefits[benefit.id] = benefit
        b = list(benefits)
        products = (
            Product(uuid4_from(rng), "Starter", 900, "usd", "month", (b[0], b[1])),
            Product(uuid4_from(rng), "Pro", 2900, "usd", "month", (b[0], b[1], b[2], b[4])),
            Product(uuid4_from(rng), "Pro yearly", 29000, "usd", "year", (b[0], b[1], b[2], b[4])),
            Product(uuid4_from(rng), "Team", 9900, "usd", "month", tuple(b[:5])),
            Product(uuid4_from(rng), "API", 0, "usd", "month", (b[5],), meter_ids),
            Product(uuid4_from(rng), "Pro (EUR)", 2700, "eur", "month", (b[0], b[3])),
        )
        return cls(products=products, benefits=benefits, meters=meters)


def seeded_state(key: int, created_us: int, reference_us: int, catalog: Catalog) -> StateRecord:
    """The state of a seeded customer, generated from its own RNG seed when first needed."""
    rng = random.Random(key)
    state = StateRecord()
    weights = (30, 30, 10, 8, 14, 8)
    count = 1 if rng.random() < 0.85 else 2
    chosen: list[Product] = []
    while len(chosen) < count:
        product = rng.choices(catalog.products, weights)[0]
        if product not in chosen:
            chosen.append(product)
    for product in chosen:
        started = min(created_us + rng.randint(0, 30) * DAY_US, reference_us)
        status = "active"
        if rng.random() < 0.1:
            # A trial still running at the reference time.
            status = "trialing"
            started = max(created_us, reference_us - rng.randint(1, 13) * DAY_US)
        sub_meters = []
        for meter_id in product.meter_ids:
            consumed = rng.randint(0, 12_000)
            credited = 10_000
            sub_meters.append(
                subscription_meter(
                    meter_id=meter_id,
                    id=uuid4_from(rng),
                    now=started,
                    consumed_units=consumed,
                    credited_units=credited,
                    amount=max(consumed - credited, 0) // 10,
                )
            )
            item = meter(
                id=uuid4_from(rng),
                now=reference_us,
                meter_id=meter_id,
                consumed_units=consumed,
                credited_units=credited,
                created_us=started,
            )
            state.meters[meter_id] = item
        sub = subscription(
            id=uuid4_from(rng),
            now=reference_us,
            product_id=product.id,
            amount=product.amount,
            currency=product.currency,
            recurring_interval=product.recurring_interval,
            status=status,
            started_us=started,
            meters=sub_meters,
        )
        state.subscriptions[sub["id"]] = sub
        for benefit_id in product.benefit_ids:
            if any(g["benefit_id"] == benefit_id for g in state.grants.values()):
                continue
            benefit = catalog.benefits[benefit_id]
            item = grant(
                id=uuid4_from(rng),
                now=reference_us,
                benefit_id=benefit.id,
                benefit_type=benefit.type,
                properties=default_properties(benefit.type, rng),
                benefit_metadata=benefit.metadata,
                granted_us=started,
            )
            state.grants[item["id"]] = item
    return state
