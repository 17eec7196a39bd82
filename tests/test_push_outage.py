"""1,000 users created, updated and deleted while Polar is unreachable, then one drain.

Phases, against the local Polar server over real HTTP, with the drain running
in-process after every commit (no broker), so every change also tries Polar:

0. Polar up: 50 users are created (and pushed), so that deletes meet real customers.
1. Server stopped (connection refused): 500 users are created.
2. Server back but answering 503 to everything: 500 more users are created; all
   1,050 are updated (new email and name), every tenth a second time; every fifth
   is deleted (10 of them had a customer in Polar already).
3. Recovery: faults cleared, ``manage.py polar_push``.

Then Polar must hold exactly the surviving users, each created once with its latest
email and name; deleted users' customers must be gone; the outbox must be empty.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from polar_sync.models import Customer, PushOutbox
from tests.push_support import make_user

pytestmark = pytest.mark.e2e

EARLY = 50
USERS = 1000  # created during the outage


@pytest.fixture
def polar(live_polar, transactional_db):
    return live_polar


@pytest.mark.slow
def test_nothing_is_lost_while_polar_is_down(polar):
    store = polar.store
    users = [make_user() for _ in range(EARLY)]
    early = {str(u.pk): store.get_customer_by_external_id(str(u.pk))["id"] for u in users}

    polar.stop()
    users += [make_user() for _ in range(USERS // 2)]
    refused = PushOutbox.objects.filter(last_error__contains="could not reach").count()
    assert refused > 0

    polar.start()
    polar.faults.fail_rate = 1.0
    polar.faults.fail_statuses = (503,)
    users += [make_user() for _ in range(USERS - USERS // 2)]
    for user in users:
        user.email = f"moved-{user.pk}@example.org"
        user.first_name = "Updated"
        user.save()
    for user in users[::10]:
        user.last_name = f"Final{user.pk}"
        user.save()
    deleted = users[::5]
    deleted_ids = {str(u.pk) for u in deleted}
    for user in deleted:
        user.delete()

    outage_503 = store.status_counts[503]
    assert store.status_counts.keys() <= {200, 201, 404, 503}
    waiting = PushOutbox.objects.count()
    assert waiting == EARLY + USERS  # one row per user: 840 upserts, 210 deletes
    assert PushOutbox.objects.filter(action="delete").count() == len(deleted)
    assert outage_503 > 0

    polar.faults.clear()
    store.reset_requests()
    out = StringIO()
    call_command("polar_push", stdout=out)

    expected = {
        str(u.pk): (u.email, u.get_full_name()) for u in get_user_model().objects.order_by("pk")
    }
    live = {c["external_id"]: (c["email"], c["name"]) for c in store.customers()}
    assert len(expected) == EARLY + USERS - len(deleted)
    assert live == expected  # the right customers, with the latest email and name
    early_deleted = [early[e] for e in deleted_ids & early.keys()]
    assert len(early_deleted) == EARLY // 5
    assert all(store.get_customer(cid)["deleted_at"] is not None for cid in early_deleted)
    # each customer created once: EARLY before the outage, the other survivors after it
    creates = store.request_counts["customers:create"]
    assert creates == len(expected) - (EARLY - len(early_deleted))
    assert len(store.customers(include_deleted=True)) == EARLY + creates
    assert not PushOutbox.objects.exists()
    assert Customer.objects.active().count() == len(expected)
    assert "Outbox now: 0 pending, 0 failed." in out.getvalue()

    print(
        f"\noutage: {USERS} users created during the outage (+{EARLY} before), "
        f"{waiting} outbox rows waiting "
        f"({len(deleted)} deletes); during the outage {refused} pushes met a stopped server "
        f"and {outage_503} requests were answered 503; "
        f"recovery: {store.log.request_total} requests, {creates} creates, "
        f"{store.request_counts['customers:update_external']} updates by external ID, "
        f"{store.request_counts['customers:delete_external']} deletes; "
        f"Polar holds {len(live)} customers, outbox empty"
    )
