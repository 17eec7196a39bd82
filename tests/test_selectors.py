"""Entitlement helpers, their template filters, and the status figures: one query each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.utils import timezone

from polar_sync import selectors, status_selectors
from polar_sync.models import CustomerBalance, CustomerState, StateSubscription, SyncRun
from tests.factories import make_balance, make_customer, make_state
from tests.mirror_helpers import BENEFIT, ENDED_PRODUCT, OTHER, PRODUCT, linked_customer, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber():
    user = make_user()
    customer = linked_customer(user)
    make_state(customer)
    make_balance(customer, cents=1234)
    return user


def test_a_subscribed_user_is_entitled_in_one_query_per_question(
    subscriber, django_assert_num_queries
):
    with django_assert_num_queries(1):
        assert selectors.user_has_active_subscription(subscriber) is True
    with django_assert_num_queries(1):
        assert selectors.user_has_active_subscription(subscriber, PRODUCT) is True
    with django_assert_num_queries(1):
        assert selectors.user_has_active_subscription(subscriber, OTHER) is False
    with django_assert_num_queries(1):
        assert selectors.user_has_benefit(subscriber, BENEFIT) is True
    with django_assert_num_queries(1):
        assert selectors.user_has_benefit(subscriber, OTHER) is False


def test_a_subscription_whose_end_has_passed_no_longer_counts(subscriber):
    # The fixture's trialing subscription was cancelled and ended in 2025-02, but it is
    # still in the (stale) mirrored state.
    assert StateSubscription.objects.filter(product_id=ENDED_PRODUCT).exists()
    assert selectors.user_has_active_subscription(subscriber, ENDED_PRODUCT) is False


def test_a_subscription_ending_later_still_counts():
    user = make_user()
    customer = linked_customer(user)
    make_state(customer, product_id=OTHER)
    StateSubscription.objects.update(ends_at=timezone.now() + timedelta(days=3))
    assert selectors.user_has_active_subscription(user, OTHER) is True
    StateSubscription.objects.update(ends_at=timezone.now() - timedelta(seconds=1))
    assert selectors.user_has_active_subscription(user) is False


def test_users_without_a_live_customer_are_entitled_to_nothing(django_assert_num_queries):
    nobody = make_user()
    deleted = make_user()
    customer = linked_customer(deleted)
    make_state(customer)
    customer.deleted_at = timezone.now()
    customer.save()
    stranger = make_customer()  # a customer with the benefit, linked to no one
    make_state(stranger)
    for user in (nobody, deleted):
        assert selectors.user_has_active_subscription(user) is False
        assert selectors.user_has_benefit(user, BENEFIT) is False
        assert selectors.user_customer_state(user) is None
    with django_assert_num_queries(0):
        anonymous = AnonymousUser()
        assert selectors.user_has_active_subscription(anonymous) is False
        assert selectors.user_has_benefit(anonymous, BENEFIT) is False
        assert selectors.user_customer_state(anonymous) is None
        assert selectors.user_has_benefit(None, BENEFIT) is False


@pytest.mark.parametrize("bad", ["not-a-uuid", "", 42])
def test_a_malformed_id_is_a_clear_error(subscriber, bad):
    with pytest.raises(ValueError, match="benefit_id must be a Polar UUID"):
        selectors.user_has_benefit(subscriber, bad)
    with pytest.raises(ValueError, match="product_id must be a Polar UUID"):
        selectors.user_has_active_subscription(AnonymousUser(), bad or "x")


def test_customer_state_snapshot_is_one_query_and_answers_many_checks(
    subscriber, django_assert_num_queries
):
    with django_assert_num_queries(1):
        snapshot = selectors.user_customer_state(subscriber)
        assert snapshot is not None
        assert snapshot.customer.user_id == subscriber.pk
        assert snapshot.balance.balance == 1234
        assert snapshot.product_ids == {PRODUCT}  # the ended one is left out
        assert len(snapshot.granted_benefits) == 2
        assert len(snapshot.active_meters) == 1
        assert snapshot.has_benefit(BENEFIT) and not snapshot.has_benefit(OTHER)
        assert snapshot.has_active_subscription() and snapshot.has_active_subscription(PRODUCT)
        assert not snapshot.has_active_subscription(ENDED_PRODUCT)
        assert snapshot.synced_at == snapshot.state.synced_at


def test_snapshot_of_a_customer_never_fetched_is_empty_not_an_error():
    user = make_user()
    linked_customer(user)
    snapshot = selectors.user_customer_state(user)
    assert snapshot is not None
    assert snapshot.state is None and snapshot.balance is None
    assert snapshot.subscriptions == [] and snapshot.benefit_ids == set()
    assert snapshot.has_active_subscription() is False


def test_the_newest_live_customer_of_a_user_wins():
    user = make_user()
    old = linked_customer(user, created_at="2024-01-01T00:00:00Z")
    new = make_customer(created_at="2025-06-01T00:00:00Z")
    new.user = user
    new.save()
    assert selectors.user_customer_state(user).customer == new
    assert selectors.user_customer(user=user) == new
    assert old != new


def test_template_filters_and_tag(subscriber):
    template = Template(
        "{% load polar_sync %}"
        "{% if user|has_benefit:benefit %}B{% endif %}"
        "{% if user|has_benefit:other %}X{% endif %}"
        "{% if user|has_active_subscription %}S{% endif %}"
        "{% if user|has_active_subscription:product %}P{% endif %}"
        "{% if user|has_active_subscription:other %}X{% endif %}"
        "{% polar_customer_state user as polar %}"
        "{% if benefit in polar.benefit_ids %}b{% endif %}"
        "{% for sub in polar.subscriptions %}[{{ sub.product_id }}]{% endfor %}"
    )
    context = {"benefit": BENEFIT, "other": OTHER, "product": PRODUCT}
    assert template.render(Context({**context, "user": subscriber})) == f"BSPb[{PRODUCT}]"
    assert template.render(Context({**context, "user": AnonymousUser()})) == ""


def test_sync_status_counts_what_operators_need(settings):
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "STATE_REFRESH_INTERVAL": 60}
    now = timezone.now()
    fresh = make_customer()
    make_state(fresh)
    make_balance(fresh)
    stale = make_customer()
    make_state(stale)
    CustomerState.objects.filter(customer=stale).update(synced_at=now - timedelta(hours=1))
    make_customer()  # never fetched
    gone = make_customer()
    gone.deleted_at = now
    gone.save()
    pull = SyncRun.objects.create(
        kind="customers",
        status="succeeded",
        started_at=now - timedelta(minutes=10),
        heartbeat_at=now - timedelta(minutes=9),
        finished_at=now - timedelta(minutes=9),
    )
    SyncRun.objects.create(kind="customers", status="failed", started_at=now, heartbeat_at=now)

    status = status_selectors.sync_status()

    assert status.last_pull == pull
    assert timedelta(minutes=8) < status.last_pull_age < timedelta(minutes=10)
    assert status.last_runs["customers"].status == "failed"
    assert status.last_runs["states"] is None
    assert (status.customers, status.deleted_customers) == (3, 1)
    assert status.stale_states == 2  # the old one and the one never fetched
    assert status.stale_balances == 2
    assert CustomerBalance.objects.count() == 1
