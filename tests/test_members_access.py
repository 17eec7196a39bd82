"""Users who are members: entitlements (selectors, permissions, template tags) from the
team's state, in constant queries; members in the API and the admin."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from polar_sync import selectors
from polar_sync.api.permissions import HasActiveSubscription, HasBenefit
from polar_sync.mapping_members import member_fields
from polar_sync.models import Customer, Member
from tests.factories import make_customer, make_state
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT, linked_customer, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")
ME = reverse("polar_sync:api:me")


def add_member(team: Customer, user=None, *, role: str = "member", **overrides) -> Member:
    payload = {
        "id": str(uuid.uuid4()),
        "created_at": "2026-05-01T10:00:00Z",
        "modified_at": None,
        "customer_id": str(team.pk),
        "email": f"m{uuid.uuid4().hex[:8]}@example.com",
        "name": "Member",
        "external_id": str(user.pk) if user else None,
        "role": role,
    }
    payload.update(overrides)
    return Member.objects.create(**member_fields(payload), user=user, synced_at=timezone.now())


def subscribed_team(**fields) -> Customer:
    team = make_customer(**fields)
    make_state(team)  # an active subscription to PRODUCT and a grant of BENEFIT
    return team


# -- entitlements -----------------------------------------------------------------------------


def test_a_member_of_a_subscribed_team_is_entitled(django_assert_num_queries):
    user = make_user()
    add_member(subscribed_team(), user)
    with django_assert_num_queries(1):
        assert selectors.user_has_active_subscription(user)
    with django_assert_num_queries(1):
        assert selectors.user_has_active_subscription(user, PRODUCT)
    with django_assert_num_queries(1):
        assert selectors.user_has_benefit(user, BENEFIT)
    assert not selectors.user_has_active_subscription(user, OTHER)
    assert not selectors.user_has_benefit(user, OTHER)


def test_a_member_of_a_team_without_subscription_or_a_deleted_team_is_not():
    user = make_user()
    add_member(make_customer(), user)
    deleted = subscribed_team()
    Customer.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    add_member(deleted, user)
    add_member(subscribed_team())  # someone else's team
    assert not selectors.user_has_active_subscription(user)
    assert not selectors.user_has_benefit(user, BENEFIT)
    assert selectors.user_customer_state(user).has_active_subscription() is False


@pytest.mark.parametrize("teams", [0, 1, 3])
def test_entitlement_queries_do_not_grow_with_teams(teams, django_assert_num_queries):
    user = make_user()
    linked_customer(user)  # an individual customer of their own, no state
    for _ in range(teams):
        add_member(subscribed_team(), user)
    with django_assert_num_queries(1):
        snapshot = selectors.user_customer_state(user)
    with django_assert_num_queries(0):
        assert snapshot.has_active_subscription() is bool(teams)
        assert snapshot.has_benefit(BENEFIT) is bool(teams)
    assert snapshot.customer.user == user  # their own customer comes first
    with django_assert_num_queries(1):
        assert selectors.user_has_benefit(user, BENEFIT) is bool(teams)


def test_a_member_without_a_customer_of_their_own_gets_the_teams_snapshot():
    user = make_user()
    team = subscribed_team()
    add_member(team, user, role="owner")
    snapshot = selectors.user_customer_state(user)
    assert snapshot.customer == team and PRODUCT in snapshot.product_ids
    assert selectors.user_customer_state(AnonymousUser()) is None


def test_permissions_and_template_tags_answer_for_members(rf):
    user = make_user()
    add_member(subscribed_team(), user)
    request = rf.get("/")
    request.user = user
    assert HasActiveSubscription(PRODUCT)().has_permission(request, None)
    assert HasBenefit(BENEFIT)().has_permission(request, None)
    request.user = make_user()
    assert not HasBenefit(BENEFIT)().has_permission(request, None)
    template = Template(
        "{% load polar_sync %}{{ user|has_active_subscription }} {{ user|has_benefit:b }}"
    )
    assert template.render(Context({"user": user, "b": BENEFIT})) == "True True"


# -- API ---------------------------------------------------------------------------------------


def test_a_customers_members_are_listed_in_cursor_pages():
    team = make_customer()
    made = [add_member(team, created_at=f"2026-05-0{i + 1}T00:00:00Z") for i in range(3)]
    add_member(make_customer())  # another team's
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    url = reverse("polar_sync:api:customer-members", args=[team.pk])
    first = api.get(url, {"page_size": 2}).json()
    assert [m["id"] for m in first["results"]] == [str(m.pk) for m in made[:2]]
    second = api.get(first["next"]).json()
    assert [m["id"] for m in second["results"]] == [str(made[2].pk)]
    assert second["results"][0]["customer_id"] == str(team.pk)
    unknown = reverse("polar_sync:api:customer-members", args=[uuid.uuid4()])
    assert api.get(unknown).status_code == 404
    api.force_authenticate(make_user())  # not staff
    assert api.get(url).status_code == 403


def test_me_shows_the_callers_teams():
    user = make_user()
    own = linked_customer(user)
    team = make_customer(name="Acme")
    add_member(team, user, role="billing_manager")
    api = APIClient()
    api.force_authenticate(user)
    body = api.get(ME).json()
    assert body["id"] == str(own.pk)
    assert body["teams"] == [
        {"customer_id": str(team.pk), "name": "Acme", "role": "billing_manager"}
    ]


def test_me_of_a_user_who_is_only_a_member_has_null_customer_fields_and_teams():
    user = make_user()
    team = make_customer(name="Acme")
    add_member(team, user, role="owner")
    api = APIClient()
    api.force_authenticate(user)
    response = api.get(ME)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] is None and body["state"] is None
    assert body["teams"] == [{"customer_id": str(team.pk), "name": "Acme", "role": "owner"}]
    api.force_authenticate(make_user())
    assert api.get(ME).status_code == 404


# -- admin -------------------------------------------------------------------------------------


def listed(response) -> set[str]:
    return set(re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', response.text))


def test_customer_page_shows_members_and_search_finds_a_team_by_a_member(admin_client):
    team = make_customer(name="Acme")
    add_member(team, email="grace@hopper.dev", external_id="u-member", role="owner")
    make_customer()
    page = admin_client.get(reverse("admin:polar_sync_customer_change", args=[team.pk]))
    assert page.status_code == 200
    assert "members (team customers)" in page.text.lower() and "grace@hopper.dev" in page.text
    for term in ("grace@hopper.dev", "u-member"):
        assert listed(admin_client.get(CHANGELIST, {"q": term})) == {str(team.pk)}
    external = str(uuid.uuid4())  # a UUID-shaped external ID takes the exact path
    add_member(team, external_id=external)
    assert listed(admin_client.get(CHANGELIST, {"q": external})) == {str(team.pk)}


def test_member_admin_search_and_role_filter(admin_client):
    team = make_customer()
    owner = add_member(team, role="owner", email="owner@acme.dev", name="Olive")
    add_member(team, role="member", email="m@acme.dev", external_id="ext-9")
    url = reverse("admin:polar_sync_member_changelist")

    def rows(**params) -> set[str]:
        return set(
            re.findall(r"/member/([0-9a-f-]{36})/change/", admin_client.get(url, params).text)
        )

    assert len(rows()) == 2
    assert rows(q="Olive") == rows(role__exact="owner") == {str(owner.pk)}
    assert len(rows(q="ext-9")) == 1
    detail = admin_client.get(reverse("admin:polar_sync_member_change", args=[owner.pk]))
    assert detail.status_code == 200 and "owner@acme.dev" in detail.text
