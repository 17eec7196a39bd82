"""Mirror models: constraints, querysets and indexes that answer entitlement questions."""

from __future__ import annotations

import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from polar_sync.models import Customer, StateBenefitGrant, StateSubscription
from tests.factories import make_balance, make_customer, make_state

pytestmark = pytest.mark.django_db

PRODUCT = "11111111-2222-4333-8444-555555555555"
BENEFIT = "66666666-7777-4888-9999-aaaaaaaaaaaa"


def test_external_id_is_unique_when_set_and_may_be_null_many_times():
    make_customer(external_id="usr_1")
    make_customer(external_id=None)
    make_customer(external_id=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_customer(external_id="usr_1")
    assert Customer.objects.filter(external_id__isnull=True).count() == 2


def test_customer_keeps_the_whole_payload_and_polars_id_as_primary_key():
    customer = make_customer(external_id="usr_9", custom_future_field={"x": 1})
    customer.refresh_from_db()
    assert isinstance(customer.pk, uuid.UUID)
    assert customer.raw["custom_future_field"] == {"x": 1}
    assert str(customer) == customer.email


def test_state_rows_and_balance_hang_off_the_customer():
    customer = make_customer()
    make_state(customer)
    make_balance(customer, cents=-150)
    customer.refresh_from_db()
    assert customer.active_subscriptions.count() == 2
    assert customer.granted_benefits.count() == 2
    assert customer.active_meters.count() == 1
    assert customer.balance.balance == -150
    assert str(customer.balance) == "-1.50 USD"
    customer.delete()
    assert not StateSubscription.objects.exists() and not StateBenefitGrant.objects.exists()


def test_entitlement_querysets_are_one_query_each():
    with_both = make_customer()
    make_state(with_both, product_id=PRODUCT, benefit_id=BENEFIT)
    other = make_customer()
    make_state(other)
    make_customer()  # no state at all
    with CaptureQueriesContext(connection) as ctx:
        by_benefit = list(Customer.objects.with_benefit(BENEFIT))
        by_product = list(Customer.objects.with_active_subscription(PRODUCT))
        any_sub = list(Customer.objects.with_active_subscription())
    assert by_benefit == [with_both]
    assert by_product == [with_both]
    assert set(any_sub) == {with_both, other}
    assert len(ctx.captured_queries) == 3


def test_active_and_deleted():
    live = make_customer()
    gone = make_customer(deleted_at="2025-05-01T00:00:00Z")
    assert list(Customer.objects.active()) == [live]
    assert list(Customer.objects.deleted()) == [gone]
    assert gone.is_deleted and not live.is_deleted


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pattern_ops are PostgreSQL's")
def test_push_tables_carry_only_the_indexes_their_queries_use():
    """Every user save that queues a push writes the outbox: its indexes are the key and
    the drain's due index, not the ``LIKE`` twin Django adds to a CharField key."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
            [["polar_sync_pushoutbox", "polar_sync_pushedpayload"]],
        )
        indexes = cursor.fetchall()
    assert not [index for index in indexes if "pattern_ops" in index[1]]
    outbox = sorted(d.split(" USING ")[1] for t, d in indexes if t == "polar_sync_pushoutbox")
    assert outbox == ["btree (external_id)", "btree (status, next_attempt_at)"]
