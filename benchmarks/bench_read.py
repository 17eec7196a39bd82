"""Benchmark the read side: the admin changelist, the API and the entitlement helpers.

    .venv/bin/python benchmarks/bench_read.py [--customers 100000] [--runs 30]
    DATABASE_URL=postgres://polar:polar@127.0.0.1:5432/polar_sync .venv/bin/python ...

Builds a throw-away database (its own name, so nothing else is touched) holding
``--customers`` mirrored customers: 60% with a state (one subscription, one or
two benefit grants, sometimes a meter), all with a balance, 20% linked to a
local user. Then prints, for each read, the median and 95th percentile response
time over ``--runs`` runs (in-process through Django's test client, so no
network) and its number of SQL queries (sessions and auth included).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from polar_sync import selectors  # noqa: E402
from polar_sync.models import (  # noqa: E402
    Customer,
    CustomerBalance,
    CustomerState,
    StateBenefitGrant,
    StateMeter,
    StateSubscription,
)

PRODUCTS = [str(uuid.UUID(int=i + 1)) for i in range(5)]
BENEFITS = [(str(uuid.UUID(int=100 + i)), t) for i, t in enumerate(["license_keys", "custom"])]
BATCH = 2000


def create_database() -> str:
    """A fresh database of its own, migrated (so PostgreSQL gets the trigram index of
    migration 0012 as a user's database does); returns its name (dropped by ``destroy``)."""
    test = connection.settings_dict.setdefault("TEST", {})
    if connection.vendor == "sqlite":
        test["NAME"] = os.path.join(tempfile.gettempdir(), f"bench_read_{os.getpid()}.sqlite3")
    else:
        test["NAME"] = f"polar_sync_bench_read_{os.getpid()}"
    return connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)


def populate(n: int, seed: int = 0) -> tuple[Any, Customer]:
    """``n`` customers and their states, balances and users; returns (a user, their customer)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    user_model = get_user_model()
    started = time.perf_counter()
    linked = set(rng.sample(range(n), n // 5))
    users = user_model.objects.bulk_create(
        [user_model(username=f"user{i}", email=f"user{i}@example.com") for i in sorted(linked)],
        batch_size=BATCH,
    )
    user_of = dict(zip(sorted(linked), users, strict=True))
    customers = []
    for i in range(n):
        pk = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = now - timedelta(minutes=n - i)
        email = f"customer{i}@example.com"
        raw = {
            "id": str(pk),
            "email": email,
            "name": f"Customer {i}",
            "external_id": f"ext_{i}",
            "created_at": created.isoformat(),
            "metadata": {"plan": rng.choice(["free", "pro", "team"])},
            "billing_address": {"country": rng.choice(["FR", "US", "DE", "GB"])},
        }
        customers.append(
            Customer(
                id=pk,
                external_id=raw["external_id"],
                email=email,
                email_verified=rng.random() < 0.8,
                name=raw["name"],
                billing_address=raw["billing_address"],
                billing_country=raw["billing_address"]["country"],
                metadata=raw["metadata"],
                created_at=created,
                raw=raw,
                synced_at=now,
                user=user_of.get(i),
            )
        )
    Customer.objects.bulk_create(customers, batch_size=BATCH)
    subs, grants, meters, states = [], [], [], []
    for customer in customers:
        if rng.random() >= 0.6:
            continue
        synced = now - timedelta(seconds=rng.randint(0, 7200))
        product = rng.choice(PRODUCTS)
        subs.append(
            StateSubscription(
                customer=customer,
                subscription_id=uuid.uuid4(),
                product_id=product,
                status="active",
                amount=rng.choice([900, 2900, 9900]),
                currency="usd",
                recurring_interval="month",
                current_period_start=now - timedelta(days=10),
                current_period_end=now + timedelta(days=20),
                created_at=now - timedelta(days=40),
            )
        )
        for benefit, kind in BENEFITS[: rng.randint(1, 2)]:
            grants.append(
                StateBenefitGrant(
                    customer=customer,
                    grant_id=uuid.uuid4(),
                    benefit_id=benefit,
                    benefit_type=kind,
                    granted_at=now - timedelta(days=40),
                    created_at=now - timedelta(days=40),
                )
            )
        if rng.random() < 0.3:
            meters.append(
                StateMeter(
                    customer=customer,
                    customer_meter_id=uuid.uuid4(),
                    meter_id=uuid.UUID(int=999),
                    consumed_units=12.5,
                    credited_units=100,
                    balance=87.5,
                    created_at=now,
                )
            )
        states.append(
            CustomerState(
                customer=customer,
                raw={**customer.raw, "active_subscriptions": [{"product_id": product}]},
                synced_at=synced,
            )
        )
    balances = [
        CustomerBalance(customer=c, balance=rng.randint(-500, 5000), currency="usd", synced_at=now)
        for c in customers
    ]
    for model, rows in (
        (StateSubscription, subs),
        (StateBenefitGrant, grants),
        (StateMeter, meters),
        (CustomerState, states),
        (CustomerBalance, balances),
    ):
        model.objects.bulk_create(rows, batch_size=BATCH)
    print(
        f"built {n:,} customers ({len(states):,} states, {len(subs):,} subscriptions, "
        f"{len(grants):,} grants, {len(users):,} users) in {time.perf_counter() - started:.1f}s"
    )
    return _subscriber(customers, subs)


def _subscriber(customers: list[Customer], subs: list[StateSubscription]) -> tuple[Any, Customer]:
    """A customer linked to a user, with a subscription (and so the first benefit)."""
    subscribed = {s.customer_id for s in subs}
    subscriber = next(c for c in customers if c.user_id and c.pk in subscribed)
    return subscriber.user, subscriber


SLOWEST = 0  # --slowest: how many of each read's queries to print, slowest first


def measure(name: str, call: Callable[[], Any], runs: int, check: Callable[[Any], bool]) -> None:
    result = call()  # warm-up (templates, caches, connection)
    if not check(result):
        raise SystemExit(f"{name}: unexpected result {result!r}")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        call()
    p95 = statistics.quantiles(timings, n=20)[-1] if runs >= 20 else max(timings)
    print(
        f"{name:<58} median {statistics.median(timings):8.2f} ms   p95 {p95:8.2f} ms"
        f"   queries {len(queries):3d}"
    )
    slowest = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:SLOWEST]
    for query in slowest:
        print(f"    {float(query['time']) * 1000:7.1f} ms  {query['sql'][:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip ANALYZE: show the plans a database without planner statistics picks",
    )
    parser.add_argument(
        "--slowest",
        type=int,
        default=0,
        metavar="N",
        help="after each figure, print its N slowest SQL queries (one run) to see what costs",
    )
    args = parser.parse_args()
    global SLOWEST
    SLOWEST = args.slowest

    # Not setup_test_environment(): its template instrumentation would slow every page.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False
    # Reads only: no user created here is pushed to Polar.
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "PUSH_ENABLED": False}
    name = create_database()
    print(f"database: {connection.vendor} ({name})")
    try:
        user, customer = populate(args.customers)
        if not args.no_analyze:
            # Planner statistics, as PostgreSQL's autovacuum keeps them (on SQLite:
            # ``PRAGMA optimize``); without them SQLite may sort every row for a page.
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        print(f"planner statistics: {'none' if args.no_analyze else 'ANALYZE'}")
        admin = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
        staff_web, user_web = Client(), Client()
        staff_web.force_login(admin)
        user_web.force_login(user)
        changelist = "/admin/polar_sync/customer/"
        ok = lambda r: r.status_code == 200  # noqa: E731
        print(f"runs per figure: {args.runs}")
        measure("admin changelist", lambda: staff_web.get(changelist), args.runs, ok)
        measure(
            "admin changelist, search by email (contains)",
            lambda: staff_web.get(changelist, {"q": customer.email}),
            args.runs,
            lambda r: ok(r) and customer.email in r.text,
        )
        measure(
            "admin changelist, search by Polar ID",
            lambda: staff_web.get(changelist, {"q": str(customer.pk)}),
            args.runs,
            lambda r: ok(r) and customer.email in r.text,
        )
        measure(
            "admin changelist, filtered (active subscription, fresh state)",
            lambda: staff_web.get(changelist, {"subscribed": "yes", "state": "fresh"}),
            args.runs,
            ok,
        )
        measure(
            "admin customer page",
            lambda: staff_web.get(f"{changelist}{customer.pk}/change/"),
            args.runs,
            ok,
        )
        measure("API customers/", lambda: staff_web.get("/polar/api/customers/"), args.runs, ok)
        measure(
            "API customers/?active_subscription=true&product=...",
            lambda: staff_web.get(
                "/polar/api/customers/",
                {"active_subscription": "true", "product": PRODUCTS[0]},
            ),
            args.runs,
            ok,
        )
        measure("API me/", lambda: user_web.get("/polar/api/me/"), args.runs, ok)
        measure(
            "user_has_active_subscription(user)",
            lambda: selectors.user_has_active_subscription(user),
            args.runs,
            lambda r: r is True,
        )
        product = str(customer.active_subscriptions.get().product_id)
        measure(
            "user_has_active_subscription(user, product_id)",
            lambda: selectors.user_has_active_subscription(user, product),
            args.runs,
            lambda r: r is True,
        )
        measure(
            "user_has_benefit(user, benefit_id)",
            lambda: selectors.user_has_benefit(user, BENEFITS[0][0]),
            args.runs,
            lambda r: r is True,
        )
        measure(
            "user_customer_state(user)",
            lambda: selectors.user_customer_state(user),
            args.runs,
            lambda r: r is not None and r.customer.pk == customer.pk,
        )
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
