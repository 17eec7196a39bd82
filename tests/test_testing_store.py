"""The test handle (``server.store``) and deterministic seeding, without HTTP."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from polar_sync.testing import NotFound, PolarStore
from polar_sync.testing.seed import seed_records
from polar_sync.testing.validation import validate_list_query
from tests import contract


def page(store: PolarStore, **params: Any) -> list[dict[str, Any]]:
    query = validate_list_query({k: v if isinstance(v, list) else [str(v)]
                                 for k, v in params.items()})  # fmt: skip
    return json.loads(store.api_list(query))["items"]


# -- seeding ------------------------------------------------------------------------------


def test_seed_is_deterministic() -> None:
    first, second, other = (
        PolarStore(api_version="2025-10"),
        PolarStore(api_version="2025-10"),
        PolarStore(api_version="2025-10"),
    )
    first.seed(300, seed=5)
    second.seed(300, seed=5)
    other.seed(300, seed=6)
    assert first.customers() == second.customers()
    assert first.customers() != other.customers()
    ids = [c["id"] for c in first.customers()]
    assert [first.get_state(i) for i in ids] == [second.get_state(i) for i in ids]
    assert [first.get_balance(i) for i in ids] == [second.get_balance(i) for i in ids]
    assert first.catalog == second.catalog


def test_seed_is_realistic() -> None:
    store = PolarStore(api_version="2025-10")
    store.seed(2000, seed=0)
    customers = store.customers()
    assert len(customers) == len(store) == 2000
    assert len({c["email"].lower() for c in customers}) == 2000
    assert len({c["id"] for c in customers}) == 2000
    created = [c["created_at"] for c in customers]
    assert created == sorted(created) and len(set(created)) == 2000
    with_external = [c for c in customers if c["external_id"]]
    assert 0.85 < len(with_external) / 2000 < 0.98
    assert len({c["external_id"] for c in with_external}) == len(with_external)
    assert sum(c["name"] is not None for c in customers) > 1800
    countries = Counter(c["billing_address"]["country"] for c in customers if c["billing_address"])
    assert len(countries) >= 20 and countries.most_common(1)[0][0] == "US"
    assert 50 < sum(c["tax_id"] is not None for c in customers) < 500
    assert sum(bool(c["metadata"]) for c in customers) > 1400
    assert 100 < sum(store.get_balance(c["id"])["balance"] != 0 for c in customers) < 600

    states = [store.get_state(c["id"]) for c in customers]
    subscribed = [s for s in states if s["active_subscriptions"]]
    assert 0.25 < len(subscribed) / 2000 < 0.5
    products = Counter(p["product_id"] for s in subscribed for p in s["active_subscriptions"])
    assert set(products) <= {p.id for p in store.catalog.products}
    assert len(products) >= 4
    kinds = {g["benefit_type"] for s in states for g in s["granted_benefits"]}
    assert kinds == {"custom", "discord", "github_repository", "downloadables", "license_keys",
                     "meter_credit"}  # fmt: skip
    assert any(s["active_meters"] for s in states)
    statuses = Counter(p["status"] for s in subscribed for p in s["active_subscriptions"])
    assert statuses["active"] > statuses["trialing"] > 0


def test_seeded_customers_and_states_match_the_contract() -> None:
    contract.load_spec()
    store = PolarStore(api_version="2025-10")
    store.seed(400, seed=9)
    for customer in store.customers():
        contract.validate_schema("Customer", customer)
        contract.validate_schema("CustomerState", store.get_state(customer["id"]))
        contract.validate_schema("CustomerBalance", store.get_balance(customer["id"]))


def test_seeding_twice_appends_without_clashes() -> None:
    store = PolarStore(api_version="2025-10")
    store.add_customer(email="first@example.com", external_id="usr_0000002")
    store.seed(50, seed=0)
    store.seed(50, seed=0)
    customers = store.customers()
    assert len(customers) == 101
    assert len({c["email"] for c in customers}) == 101
    externals = [c["external_id"] for c in customers if c["external_id"]]
    assert len(externals) == len(set(externals))
    # Seeded customers are older than the one added now: creation order is kept.
    assert customers[-1]["email"] == "first@example.com"
    assert page(store, limit=1)[0]["email"] == "first@example.com"


# -- the handle ------------------------------------------------------------------------------


def test_seed_records_is_a_pure_function_the_store_indexes() -> None:
    first = seed_records(n=50, seed=3, first_seq=11)
    assert [r.email for r in first] == [r.email for r in seed_records(n=50, seed=3, first_seq=11)]
    assert first[0].external_id == "usr_0000011" or first[0].external_id is None
    taken = {r.email for r in first[:5]}
    again = seed_records(n=50, seed=3, first_seq=11, taken_emails=taken)
    assert not taken & {r.email for r in again}

    store = PolarStore(api_version="2025-10")
    store.seed(50, 3)
    emails = {c["email"] for c in store.customers()}
    assert emails == {r.email for r in seed_records(n=50, seed=3)}


def test_add_customer_with_any_fields() -> None:
    store = PolarStore(
        api_version="2025-10", organization_id="1dbfc517-0bbf-4301-9ba8-555ca42b9737"
    )
    newer = store.add_customer(email="new@example.com")
    older = store.add_customer(
        email="old@example.com", id="992fae2a-2a17-4b7a-8d9e-e287cf90131b", name="Old",
        created_at="2020-05-01T10:00:00Z", modified_at="2020-06-01T10:00:00Z",
        email_verified=True, external_id="old", metadata={"k": 1},
        billing_address={"country": "RU"}, tax_id=("7707083893", "ru_inn"), balance=5,
    )  # fmt: skip
    assert older["created_at"] == "2020-05-01T10:00:00Z"
    assert older["modified_at"] == "2020-06-01T10:00:00Z"
    assert older["organization_id"] == "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
    assert older["billing_address"]["country"] == "RU"  # the handle does not validate
    assert [c["id"] for c in page(store, sorting="created_at")] == [older["id"], newer["id"]]
    assert store.get_customer_by_external_id("old") == older
    assert store.get_balance(older["id"]) == {"balance": 5, "currency": "USD"}
    with pytest.raises(ValueError, match="email"):
        store.add_customer(email="NEW@example.com")
    with pytest.raises(ValueError, match="external_id"):
        store.add_customer(external_id="old")
    ghost = store.add_customer(email="new@example.com", deleted=True)
    assert ghost["deleted_at"] is not None
    assert len(store) == 2 and len(store.customers(include_deleted=True)) == 3


def test_update_and_delete_customer() -> None:
    store = PolarStore(api_version="2025-10")
    customer = store.add_customer(email="a@example.com", external_id="a")
    updated = store.update_customer(customer["id"], name="A", metadata={"x": "y"})
    assert updated["name"] == "A" and updated["modified_at"] is not None
    assert page(store, **{"metadata[x]": "y"})[0]["id"] == customer["id"]
    with pytest.raises(TypeError):
        store.update_customer(customer["id"], colour="red")
    deleted = store.delete_customer(customer["id"])
    assert deleted["deleted_at"] is not None and deleted["external_id"] is None
    assert store.get_customer_by_external_id("a") is None
    with pytest.raises(NotFound):
        store.update_customer(customer["id"], name="B")
    with pytest.raises(NotFound):
        store.start_subscription("992fae2a-2a17-4b7a-8d9e-e287cf90131b")


def test_subscriptions() -> None:
    store = PolarStore(api_version="2025-10")
    customer = store.add_customer()
    meter_id = "d498a884-e2cd-4d3e-8002-f536468a8b22"
    monthly = store.start_subscription(
        customer["id"], product_id="d8dd2de1-21b7-4a41-8bc3-ce909c0cfe23", amount=2900,
        currency="eur", recurring_interval="year", metadata={"source": "test"},
        meters=[meter_id, {"meter_id": meter_id, "consumed_units": 5, "credited_units": 10}],
    )  # fmt: skip
    trial = store.start_subscription(customer["id"], status="trialing")
    assert monthly["current_period_end"] > monthly["current_period_start"]
    assert trial["trial_end"] is not None and trial["status"] == "trialing"
    state = store.get_state(customer["id"])
    assert [s["id"] for s in state["active_subscriptions"]] == [monthly["id"], trial["id"]]
    assert state["active_subscriptions"][0]["meters"][1]["consumed_units"] == 5

    later = store.cancel_subscription(customer["id"], trial["id"], at_period_end=True)
    assert later["cancel_at_period_end"] is True
    assert later["ends_at"] == later["current_period_end"] and later["canceled_at"]
    assert len(store.get_state(customer["id"])["active_subscriptions"]) == 2
    store.cancel_subscription(customer["id"], monthly["id"])
    remaining = store.get_state(customer["id"])["active_subscriptions"]
    assert [s["id"] for s in remaining] == [trial["id"]]
    with pytest.raises(NotFound):
        store.cancel_subscription(customer["id"], monthly["id"])
    with pytest.raises(ValueError):
        store.start_subscription(customer["id"], status="past_due")


@pytest.mark.parametrize(
    ("benefit_type", "keys"),
    [
        ("custom", set()),
        ("meter_credit", set()),
        ("discord", {"account_id", "guild_id", "role_id", "granted_account_id"}),
        ("github_repository", {"account_id", "repository_owner", "repository_name",
                               "permission", "granted_account_id"}),
        ("downloadables", {"files"}),
        ("license_keys", {"license_key_id", "display_key"}),
    ],
)  # fmt: skip
def test_benefits(benefit_type: str, keys: set[str]) -> None:
    store = PolarStore(api_version="2025-10")
    customer = store.add_customer()
    grant = store.grant_benefit(customer["id"], benefit_type, benefit_metadata={"a": 1})
    assert set(grant["properties"]) == keys
    assert store.get_state(customer["id"])["granted_benefits"] == [grant]
    store.revoke_benefit(customer["id"], grant["benefit_id"])
    assert store.get_state(customer["id"])["granted_benefits"] == []
    with pytest.raises(NotFound):
        store.revoke_benefit(customer["id"], grant["id"])


def test_benefit_with_explicit_properties_and_unknown_type() -> None:
    store = PolarStore(api_version="2025-10")
    customer = store.add_customer()
    grant = store.grant_benefit(customer["id"], "downloadables", properties={"files": []},
                                benefit_id="397a17aa-15cf-4cb4-9333-18040203cf98")  # fmt: skip
    assert grant["properties"] == {"files": []}
    store.revoke_benefit(customer["id"], grant["id"])
    with pytest.raises(ValueError):
        store.grant_benefit(customer["id"], "stickers")


def test_meters_and_balance() -> None:
    store = PolarStore(api_version="2025-10")
    customer = store.add_customer()
    meter = store.set_meter(customer["id"], consumed_units=30, credited_units=100)
    assert meter["balance"] == 70
    again = store.set_meter(customer["id"], meter["meter_id"], consumed_units=120,
                            credited_units=100)  # fmt: skip
    assert again["id"] == meter["id"] and again["balance"] == -20
    assert store.get_state(customer["id"])["active_meters"] == [again]
    store.set_balance(customer["id"], -999)
    assert store.api_balance(customer["id"]) == {"balance": -999, "currency": "USD"}


def test_handle_changes_are_announced() -> None:
    store = PolarStore(api_version="2025-10")
    seen: list[str] = []
    store.subscribe(lambda kind, payload: seen.append(f"{kind}:{payload['id'][:4]}"))
    customer = store.add_customer()
    short = customer["id"][:4]
    sub = store.start_subscription(customer["id"])
    store.grant_benefit(customer["id"])
    store.set_meter(customer["id"])
    store.cancel_subscription(customer["id"], sub["id"])
    store.update_customer(customer["id"], name="N")
    store.delete_customer(customer["id"])
    assert seen == [
        f"customer.created:{short}", f"customer.state_changed:{short}",
        *[f"customer.state_changed:{short}"] * 4,
        f"customer.updated:{short}", f"customer.state_changed:{short}",
        f"customer.deleted:{short}", f"customer.state_changed:{short}",
    ]  # fmt: skip
    store.seed(10)
    assert len(seen) == 10  # bulk seeding announces nothing


def test_subscriber_may_call_back_into_the_store() -> None:
    store = PolarStore(api_version="2025-10")
    states: list[dict[str, Any]] = []

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "customer.created":
            states.append(store.get_state(payload["id"]))

    store.subscribe(on_event)
    customer = store.add_customer()
    assert states[0]["id"] == customer["id"]


def test_sorted_walks_over_a_big_store() -> None:
    store = PolarStore(api_version="2025-10")
    store.seed(3000, seed=2)
    by_name = page(store, sorting="name", limit=100)
    names = [c["name"] for c in by_name]
    assert names == sorted(names, key=lambda n: (n is None, n or ""))
    assert page(store, sorting="name", limit=100) == by_name
    walked = [
        c["id"] for p in range(1, 31) for c in page(store, sorting="email", limit=100, page=p)
    ]
    assert len(walked) == len(set(walked)) == 3000


def test_rendered_json_equals_the_dicts() -> None:
    """Pages are rendered from a fast path; it must say what ``customer_dict`` says."""
    store = PolarStore(api_version="2025-10")
    assert store and len(store) == 0
    store.seed(500, seed=11)
    store.add_customer(email='q"uote\\@example.com', name="Zoë \u2603\n", external_id="é/1",
                       metadata={"f": 1.25, "b": False, "s": "\x00"}, tax_id=["1", "us_ein"],
                       billing_address={"country": "US", "line1": None}, balance=3)  # fmt: skip
    rendered = [
        item for p in range(1, 7) for item in page(store, limit=100, page=p, sorting="created_at")
    ]
    assert rendered == store.customers()
    for customer in rendered:
        assert json.loads(store.api_get(id=customer["id"])) == customer
