"""Pure mapping functions on the contract's shapes, nulls included, and 2026-10 shapes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from polar_sync import mapping
from polar_sync.mapping import MappingError
from tests.conftest import load_fixture


def test_customer_fields_from_a_full_customer():
    fields = mapping.customer_fields(load_fixture("customer"))
    assert fields["id"] == uuid.UUID("992fae2a-2a17-4b7a-8d9e-e287cf90131b")
    assert fields["external_id"] == "usr_1337"
    assert fields["billing_country"] == "FR"
    assert fields["tax_id"] == ["FR61954506077", "eu_vat"]
    assert fields["metadata"] == {"plan": "pro", "seats": 5, "ratio": 0.5, "beta": True}
    assert fields["created_at"] == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert fields["modified_at"] == datetime(2025, 4, 2, 11, 30, tzinfo=UTC)
    assert fields["deleted_at"] is None
    assert fields["raw"] == load_fixture("customer")
    assert set(fields) == set(mapping.CUSTOMER_FIELDS)


def test_customer_fields_with_every_nullable_null():
    fields = mapping.customer_fields(load_fixture("customer_nulls"))
    assert fields["external_id"] is None
    assert fields["name"] is None
    assert fields["billing_address"] is None
    assert fields["billing_country"] == ""
    assert fields["tax_id"] is None
    assert fields["modified_at"] is None
    assert fields["created_at"].tzinfo is not None


def test_customer_fields_from_a_2026_team_customer_without_email():
    payload = load_fixture("customer_2026_team")
    fields = mapping.customer_fields(payload)
    assert fields["email"] is None
    assert fields["billing_country"] == "DE"
    assert (fields["type"], fields["billing_name"], fields["locale"]) == (
        "team",
        "Acme Corp.",
        "de-DE",
    )
    assert fields["first_user_event_at"] == datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    assert fields["default_payment_method_id"] is None


def test_a_2025_customer_has_no_2026_fields():
    fields = mapping.customer_fields(load_fixture("customer"))
    assert [fields[k] for k in ("type", "billing_name", "locale", "first_user_event_at")] == [
        None
    ] * 4
    assert fields["default_payment_method_id"] is None


def test_2026_subscription_seats_and_units():
    state = load_fixture("state")
    state["active_subscriptions"][0].update(seats=5, units=None)
    _customer, subs, _grants, _meters = mapping.state_rows(state)
    assert (subs[0]["seats"], subs[0]["units"]) == (5, None)
    assert (subs[1]["seats"], subs[1]["units"]) == (None, None)  # absent: null
    state["active_subscriptions"][0]["units"] = "5"
    with pytest.raises(MappingError, match="'units' is not an integer"):
        mapping.state_rows(state)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": "nope"}, "'id' is not a UUID"),
        ({"created_at": "yesterday"}, "'created_at' is not an ISO-8601"),
        ({"tax_id": ["only-one"]}, "'tax_id' is not a [value, format] pair"),
        ({"billing_address": "Paris"}, "'billing_address' is not an object"),
        ({"metadata": [1]}, "'metadata' is not an object"),
        ({"email": 12}, "'email' is not a string"),
        ({"type": "company"}, "'type' is not one of individual, team"),
        ({"default_payment_method_id": "pm_1"}, "'default_payment_method_id' is not a UUID"),
        ({"first_user_event_at": "soon"}, "'first_user_event_at' is not an ISO-8601"),
    ],
)
def test_malformed_customers_name_the_id_and_the_problem(change, message):
    payload = dict(load_fixture("customer"), **change)
    with pytest.raises(MappingError) as info:
        mapping.customer_fields(payload)
    assert message in str(info.value)
    assert str(payload["id"]) in str(info.value)


def test_missing_created_at_is_reported():
    payload = load_fixture("customer")
    del payload["created_at"]
    with pytest.raises(MappingError, match="'created_at' is missing"):
        mapping.customer_fields(payload)


def test_meter_units_are_exact_decimals():
    payload = load_fixture("state")
    meter = payload["active_meters"][0]
    meter.update(consumed_units=2**60 + 1, balance=0.1, credited_units=7)
    (row,) = mapping.state_rows(payload)[3]
    assert row["consumed_units"] == Decimal(2**60 + 1)  # a float would round it
    assert row["balance"] == Decimal("0.1")
    assert row["credited_units"] == 7


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "5"])
def test_meter_units_must_be_finite_numbers(bad):
    payload = load_fixture("state")
    payload["active_meters"][0]["balance"] = bad
    with pytest.raises(MappingError, match="'balance' is not a finite number"):
        mapping.state_rows(payload)


def test_state_rows_carry_every_field_of_the_spec():
    customer, subs, grants, meters = mapping.state_rows(load_fixture("state"))
    assert customer["email"] == "ada@example.com"
    assert len(subs) == 2 and len(grants) == 2 and len(meters) == 1
    active, trial = subs
    assert active["product_id"] == uuid.UUID("d8dd2de1-21b7-4a41-8bc3-ce909c0cfe23")
    assert active["amount"] == 1000 and active["currency"] == "usd"
    assert active["recurring_interval"] == "month"
    assert active["custom_field_data"]["renewal"] is None
    assert active["meters"][0]["consumed_units"] == 25.5
    assert active["discount_id"] is None and trial["discount_id"] is not None
    assert trial["status"] == "trialing" and trial["cancel_at_period_end"] is True
    assert trial["trial_end"] == datetime(2025, 2, 24, 9, 0, tzinfo=UTC)
    assert trial["current_period_end"] is None
    license_grant, github_grant = grants
    assert license_grant["benefit_type"] == "license_keys"
    assert license_grant["properties"]["display_key"] == "****-ABCD"
    assert github_grant["properties"]["repository_name"] == "polar"
    assert meters[0] == {
        "customer_meter_id": uuid.UUID("ab12cd34-ef56-4a78-9b01-c23d45e67f89"),
        "meter_id": uuid.UUID("d498a884-e2cd-4d3e-8002-f536468a8b22"),
        "consumed_units": 25.5,
        "credited_units": 100,
        "balance": 74.5,
        "created_at": datetime(2025, 1, 3, 13, 37, tzinfo=UTC),
        "modified_at": datetime(2025, 4, 1, tzinfo=UTC),
    }


def test_empty_state():
    _customer, subs, grants, meters = mapping.state_rows(load_fixture("state_empty"))
    assert (subs, grants, meters) == ([], [], [])


def test_malformed_state_children_are_named():
    payload = load_fixture("state")
    payload["active_subscriptions"][0]["amount"] = "10"
    with pytest.raises(MappingError, match=r"subscription e5149aae.*'amount' is not an integer"):
        mapping.state_rows(payload)
    payload = load_fixture("state")
    del payload["granted_benefits"][1]["benefit_id"]
    with pytest.raises(MappingError, match=r"benefit grant a1b2c3d4.*'benefit_id' is missing"):
        mapping.state_rows(payload)
    payload = load_fixture("state")
    payload["active_meters"] = {"not": "a list"}
    with pytest.raises(MappingError, match="'active_meters' is not a list"):
        mapping.state_rows(payload)


def test_balance_fields():
    assert mapping.balance_fields(load_fixture("balance")) == {"balance": 2500, "currency": "usd"}
    # The currency is kept as Polar sends it (its balance says "USD").
    assert mapping.balance_fields({"balance": -300, "currency": "EUR"})["currency"] == "EUR"
    for bad in (
        {"balance": 1.5, "currency": "usd"},
        {"balance": True, "currency": "usd"},
        {"balance": 1},
    ):
        with pytest.raises(MappingError):
            mapping.balance_fields(bad, customer_id="c1")


class FakeUser:
    pk = 42
    email = "grace@example.com"

    def __init__(self, first="Grace", last="Hopper"):
        self.first, self.last = first, last

    def get_full_name(self):
        return f"{self.first} {self.last}".strip()


def test_user_payload_and_external_id():
    assert mapping.user_external_id(FakeUser()) == "42"
    assert mapping.user_payload(FakeUser()) == {
        "email": "grace@example.com",
        "name": "Grace Hopper",
    }
    assert mapping.user_payload(FakeUser("", ""))["name"] is None


def test_every_exception_a_caller_can_import_is_in_the_one_tree():
    import inspect

    from django.core.exceptions import ImproperlyConfigured

    from polar_sync import client, exceptions, mapping, services
    from polar_sync.exceptions import PolarError

    public = {
        value
        for module in (client, exceptions, mapping, services)
        for name, value in vars(module).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__.startswith("polar_sync.")
    }
    assert {"MappingError", "WebhookRejected", "PolarNotFoundError"} <= {c.__name__ for c in public}
    outside = [c for c in public if not issubclass(c, (PolarError, ImproperlyConfigured))]
    assert outside == []
