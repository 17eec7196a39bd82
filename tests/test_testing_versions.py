"""The local Polar server plays each API version: routing by Polar-Version, shapes, seeding."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest

from polar_sync.testing import LocalPolarServer, PolarStore
from polar_sync.testing.validation import validate_list_query

ROUTES = [
    ("GET", "/v1/customers/"),
    ("POST", "/v1/customers/"),
    ("GET", "/v1/customers/export"),
    ("GET", "/v1/customers/3b2a8e2e-7a8e-4f4c-9a55-2b1d4c3e5f60"),
    ("DELETE", "/v1/customers/external/usr_1"),
    ("GET", "/v1/customers/external/usr_1/state"),
    ("GET", "/v1/members/"),
    ("GET", "/v1/products/"),
    ("GET", "/v1/benefits/"),
    ("GET", "/v1/no-such-route"),
]


@pytest.fixture(scope="module")
def polar() -> Iterator[LocalPolarServer]:
    with LocalPolarServer(customers=40, seed=3) as server:
        yield server


def get(polar: LocalPolarServer, path: str, version: str | None = None, **kwargs):
    headers = {"Polar-Version": version} if version else {}
    return polar.request("GET", path, headers=headers, **kwargs)


def test_default_is_2026_04(polar: LocalPolarServer) -> None:
    assert polar.api_version == "2026-04"
    response = get(polar, "/v1/customers/")
    assert response.status == 200
    assert response.headers["polar-version"] == "2026-04"
    assert response.json()["items"][0]["type"] in ("individual", "team")


@pytest.mark.parametrize("version", ["2026-04", "2026-10", "2027-01"])
def test_named_versions_are_served_and_echoed(polar: LocalPolarServer, version: str) -> None:
    response = get(polar, "/v1/customers/", version)
    assert response.status == 200
    assert response.headers["polar-version"] == version
    customer = response.json()["items"][0]
    assert {"billing_name", "locale", "default_payment_method_id", "first_user_event_at"} <= set(
        customer
    )


@pytest.mark.parametrize("version", ["2025-10", "garbage", "2026-4", "2026-07"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_unsupported_versions_404_on_every_route(
    polar: LocalPolarServer, version: str, method: str, path: str
) -> None:
    response = polar.request(method, path, headers={"Polar-Version": version}, json=None)
    assert response.status == 404
    assert response.json() == {"detail": "Not Found"}  # no "error": never "customer not found"


def test_error_answers_carry_the_version_too(polar: LocalPolarServer) -> None:
    for response in (
        get(polar, "/v1/customers/", "2026-10", token=None),  # 401
        get(polar, "/v1/customers/", "2026-10", params={"limit": 0}),  # 422
        get(polar, "/v1/customers/3b2a8e2e-7a8e-4f4c-9a55-2b1d4c3e5f60", "2026-10"),  # 404
    ):
        assert response.headers["polar-version"] == "2026-10"


def test_no_balance_in_2026(polar: LocalPolarServer) -> None:
    customer = polar.store.customers()[0]
    response = get(polar, f"/v1/customers/{customer['id']}/balance")
    assert response.status == 404
    assert response.json() == {"detail": "Not Found"}


def test_a_2025_server_ignores_the_header_and_keeps_balance() -> None:
    with LocalPolarServer(api_version="2025-10", customers=5) as polar:
        customer = polar.store.customers()[0]
        for version in (None, "2026-04", "garbage"):
            response = get(polar, f"/v1/customers/{customer['id']}", version)
            assert response.status == 200
            assert "polar-version" not in response.headers
            assert "type" not in response.json()
        assert get(polar, f"/v1/customers/{customer['id']}/balance").status == 200
        assert get(polar, "/v1/members/").status == 404


def test_api_version_is_checked() -> None:
    with pytest.raises(ValueError, match="api_version"):
        LocalPolarServer(api_version="2024-01")
    with pytest.raises(ValueError, match="differs"):
        LocalPolarServer(api_version="2026-10", store=PolarStore(api_version="2025-10"))
    assert LocalPolarServer(store=PolarStore(api_version="2026-10")).api_version == "2026-10"


def test_seeded_2025_world_is_unchanged() -> None:
    """The same bytes as before the dated versions (digest taken on the old code)."""
    store = PolarStore(api_version="2025-10")
    store.seed(300, 5)
    digest = hashlib.sha256()
    for page in range(1, 4):
        query = validate_list_query({"limit": ["100"], "page": [str(page)]})
        digest.update(store.api_list(query))
    for customer in store.customers():
        digest.update(json.dumps(store.api_state(id=customer["id"])).encode())
    digest.update(b"".join(store.api_export(())))
    expected = "15d77063eb158ab887df48b6889b1f55816c759d399cc4d4523267e6804d3247"
    assert digest.hexdigest() == expected
    assert not store.members() and not store.products()


@pytest.fixture
def fresh() -> Iterator[LocalPolarServer]:
    """A world no other test has changed (the module's server is shared, in any order)."""
    with LocalPolarServer(customers=40, seed=3) as server:
        yield server


def test_seeded_2026_world_has_teams_products_and_benefits(fresh: LocalPolarServer) -> None:
    polar, store = fresh, fresh.store
    teams = [c for c in (get(polar, "/v1/customers/", params={"limit": 100}).json()["items"])
             if c["type"] == "team"]  # fmt: skip
    assert len(teams) >= 2
    for team in teams:
        members = store.members(team["id"])
        assert len(members) >= 2
        assert [m["role"] for m in members].count("owner") == 1
        external_ids = [m["external_id"] for m in members]
        assert len(set(external_ids)) == len(external_ids)
    roles = {m["role"] for m in store.members()}
    assert roles == {"owner", "billing_manager", "member"}
    product_ids = {p["id"] for p in store.products()}
    benefit_ids = {b["id"] for b in store.benefits()}
    referenced_products, referenced_benefits = set(), set()
    for customer in store.customers():
        state = get(polar, f"/v1/customers/{customer['id']}/state").json()
        referenced_products |= {s["product_id"] for s in state["active_subscriptions"]}
        referenced_benefits |= {g["benefit_id"] for g in state["granted_benefits"]}
        for sub in state["active_subscriptions"]:
            assert sub["seats"] == (len(store.members(customer["id"])) if
                                    customer["type"] == "team" else None)  # fmt: skip
            assert sub["units"] is None
    assert referenced_products and referenced_products <= product_ids
    assert referenced_benefits and referenced_benefits <= benefit_ids


def test_2026_seeding_is_deterministic_and_keeps_the_customers() -> None:
    first, second = PolarStore(), PolarStore()
    first.seed(50, 9)
    second.seed(50, 9)
    assert first.customers() == second.customers()
    assert first.members() == second.members()
    era = PolarStore(api_version="2025-10")
    era.seed(50, 9)
    assert [c["id"] for c in era.customers()] == [c["id"] for c in first.customers()]
    explicit = PolarStore(api_version="2025-10")
    explicit.seed(50, 9, teams=True)
    assert explicit.members() == first.members()


def test_a_team_may_have_no_email(polar: LocalPolarServer) -> None:
    response = polar.request(
        "POST",
        "/v1/customers/",
        json={"type": "team", "name": "Acme", "owner": {"email": "boss@acme.io", "name": "B"}},
    )
    assert response.status == 201, response.body
    team = response.json()
    assert team["email"] is None and team["type"] == "team" and team["avatar_url"] is None
    [owner] = polar.store.members(team["id"])
    assert owner["role"] == "owner" and owner["email"] == "boss@acme.io"
    assert any(c["id"] == team["id"] for c in polar.store.customers())
    listed = get(polar, "/v1/customers/", params={"query": "acme", "sorting": "email"})
    assert team["id"] in [c["id"] for c in listed.json()["items"]]
    missing = polar.request("POST", "/v1/customers/", json={"type": "team", "name": "No one"})
    assert missing.status == 422


@pytest.mark.parametrize(
    ("version", "tax_id", "country", "status", "stored"),
    [
        ("2026-10", "FR61954506077", "FR", 201, ["FR61954506077", "eu_vat"]),
        ("2026-10", "911144442", "US", 201, ["911144442", "us_ein"]),
        ("2026-10", ["911144442", "us_ein"], "US", 422, None),
        ("2026-04", "911144442", "US", 201, ["911144442", "us_ein"]),
        ("2026-04", ["911144442", "us_ein"], "US", 201, ["911144442", "us_ein"]),
        ("2026-04", "12", None, 422, None),
    ],
)
def test_tax_id_input_per_version(
    polar: LocalPolarServer, version: str, tax_id, country, status: int, stored
) -> None:
    body = {"email": f"tax-{version}-{len(str(tax_id))}-{status}-{country}@example.com",
            "tax_id": tax_id}  # fmt: skip
    if country:
        body["billing_address"] = {"country": country}
    response = polar.request("POST", "/v1/customers/", json=body,
                             headers={"Polar-Version": version})  # fmt: skip
    assert response.status == status, response.body
    if status == 201:
        assert response.json()["tax_id"] == stored
    else:
        assert response.json()["detail"][0]["loc"][:2] == ["body", "tax_id"]


def test_customer_type_upgrades_but_never_downgrades(polar: LocalPolarServer) -> None:
    created = polar.request("POST", "/v1/customers/", json={"email": "up@example.com",
                                                            "locale": "fr"}).json()  # fmt: skip
    assert created["type"] == "individual" and created["locale"] == "fr"
    path = f"/v1/customers/{created['id']}"
    assert polar.request("PATCH", path, json={"type": "team"}).json()["type"] == "team"
    assert polar.request("PATCH", path, json={"type": "individual"}).status == 422


def test_members_endpoints(polar: LocalPolarServer) -> None:
    team = polar.store.add_customer(email="team-ops@example.com", external_id="team-ops")
    individual = polar.store.add_customer(email="solo-ops@example.com")
    base = f"/v1/customers/{team['id']}/members"
    refused = polar.request("POST", f"/v1/customers/{individual['id']}/members",
                            json={"email": "x@example.com"})  # fmt: skip
    assert refused.status == 403 and refused.json()["error"] == "NotPermitted"
    polar.store.add_member(team["id"], email="owner@ops.io", role="owner", external_id="u0")
    made = polar.request("POST", base, json={"email": "ann@ops.io", "external_id": "u1",
                                             "role": "billing_manager"})  # fmt: skip
    assert made.status == 201, made.body
    member = made.json()
    clash = polar.request("POST", base, json={"email": "bob@ops.io", "external_id": "u1"})
    assert clash.status == 422
    assert polar.request("GET", f"{base}/{member['id']}").json() == member
    by_ext = "/v1/customers/external/team-ops/members/u1"
    assert polar.request("GET", by_ext).json()["id"] == member["id"]
    renamed = polar.request("PATCH", by_ext, json={"name": "Ann", "role": "member"}).json()
    assert renamed["name"] == "Ann" and renamed["role"] == "member"
    assert renamed["modified_at"] is not None
    listed = get(polar, "/v1/members/", params={"customer_id": team["id"]}).json()
    assert [m["external_id"] for m in listed["items"]] == ["u0", "u1"]
    by_role = get(polar, "/v1/members/", params={"external_customer_id": "team-ops",
                                                 "role": "owner"}).json()  # fmt: skip
    assert [m["external_id"] for m in by_role["items"]] == ["u0"]
    newest = get(polar, "/v1/members/", params={"customer_id": team["id"],
                                                "sorting": "-created_at", "limit": 1})  # fmt: skip
    assert newest.json()["pagination"] == {"total_count": 2, "max_page": 2}
    assert polar.request("DELETE", by_ext).status == 204
    assert polar.request("GET", by_ext).json()["error"] == "ResourceNotFound"
    assert get(polar, "/v1/members/", params={"role": "boss"}).status == 422


def test_products_and_benefits_endpoints(polar: LocalPolarServer) -> None:
    products = get(polar, "/v1/products/", params={"limit": 100}).json()["items"]
    names = {p["name"] for p in products}
    assert {"Starter", "Pro", "Team"} <= names
    pro = next(p for p in products if p["name"] == "Pro")
    assert get(polar, f"/v1/products/{pro['id']}").json() == pro
    benefit = pro["benefits"][0]
    with_benefit = get(polar, "/v1/products/", params={"benefit_id": benefit["id"],
                                                       "limit": 100}).json()  # fmt: skip
    assert pro["id"] in {p["id"] for p in with_benefit["items"]}
    assert get(polar, f"/v1/benefits/{benefit['id']}").json()["description"]
    licenses = get(polar, "/v1/benefits/", params={"type": "license_keys"}).json()["items"]
    assert [b["type"] for b in licenses] == ["license_keys"]
    polar.store.update_product(pro["id"], is_archived=True)
    archived = get(polar, "/v1/products/", params={"is_archived": "true"}).json()["items"]
    assert [p["id"] for p in archived] == [pro["id"]]
    polar.store.update_product(pro["id"], is_archived=False)
    unknown = "3b2a8e2e-7a8e-4f4c-9a55-2b1d4c3e5f60"
    assert get(polar, f"/v1/products/{unknown}").json()["error"] == "ResourceNotFound"
    assert get(polar, "/v1/products/not-a-uuid").status == 422
    assert get(polar, "/v1/benefits/", params={"sorting": "price"}).status == 422


def test_seats_on_state_subscriptions(polar: LocalPolarServer) -> None:
    store = polar.store
    team = store.add_customer(email="seats@example.com")
    store.add_member(team["id"], email="o@seats.io", role="owner")
    sub = store.start_subscription(team["id"])
    seat = store.assign_seat(team["id"], sub["id"], email="new@seats.io")
    state = get(polar, f"/v1/customers/{team['id']}/state").json()
    assert state["type"] == "team" and state["active_subscriptions"][0]["seats"] == 1
    claimed = store.claim_seat(seat["id"], external_id="u9")
    assert claimed["status"] == "claimed" and claimed["member"]["email"] == "new@seats.io"
    store.revoke_seat(seat["id"])
    state = get(polar, f"/v1/customers/{team['id']}/state").json()
    assert state["active_subscriptions"][0]["seats"] == 0
    assert [m["email"] for m in store.members(team["id"])] == ["o@seats.io"]
    era = PolarStore(api_version="2025-10")
    solo = era.add_customer(email="a@example.com")
    era.start_subscription(solo["id"])
    era.get_state(solo["id"])  # no seats / units in the 2025-10 shape
    assert "seats" not in era.get_state(solo["id"])["active_subscriptions"][0]


def test_the_handle_sets_the_2026_fields(polar: LocalPolarServer) -> None:
    team = polar.store.add_customer(
        type="team",
        name="Initech",
        billing_name="Initech LLC",
        locale="en-US",
        first_user_event_at="2026-01-02T03:04:05Z",
    )
    assert team["email"] is None and team["type"] == "team"
    shown = get(polar, f"/v1/customers/{team['id']}").json()
    assert shown["billing_name"] == "Initech LLC" and shown["locale"] == "en-US"
    assert shown["first_user_event_at"] == "2026-01-02T03:04:05Z"
    method = "3b2a8e2e-7a8e-4f4c-9a55-2b1d4c3e5f61"
    polar.store.update_customer(team["id"], default_payment_method_id=method, locale=None)
    shown = get(polar, f"/v1/customers/{team['id']}").json()
    assert shown["default_payment_method_id"] == method and shown["locale"] is None
    with pytest.raises(TypeError):
        polar.store.add_customer(kind="team")
