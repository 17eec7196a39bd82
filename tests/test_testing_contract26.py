"""Every answer and webhook of the local Polar server matches the document of its version.

The 2025-10 era is tests/test_testing_contract.py; this module plays 2026-04, 2026-10 and
2027-01 (checked against 2026-10's document, whose shapes it shares), and sends webhooks
at each version, 2025-10 included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from polar_sync.testing import LocalPolarServer
from tests import contract
from tests.test_webhooks_sender import Receiver

VERSIONS = ["2026-04", "2026-10", "2027-01"]
UNKNOWN = "992fae2a-2a17-4b7a-8d9e-e287cf90131b"
# The operations each version's answers went through, whichever server instance served them
# (a shuffled order may set the module's server up more than once).
SEEN: dict[str, set[str]] = {}


@pytest.fixture(scope="module", params=VERSIONS)
def polar(request: pytest.FixtureRequest) -> Iterator[LocalPolarServer]:
    version = request.param
    contract.load_spec(version)
    with LocalPolarServer(customers=60, seed=7, api_version=version) as server:
        store = server.store
        rich = store.add_customer(email="rich@example.com", external_id="rich-1", name="Rich",
                                  metadata={"plan": "pro"}, tax_id=["911144442", "us_ein"],
                                  billing_address={"country": "US", "city": "Austin"})  # fmt: skip
        sub = store.start_subscription(rich["id"], meters=[UNKNOWN])
        for benefit_type in ("custom", "discord", "github_repository", "downloadables",
                             "license_keys", "meter_credit"):  # fmt: skip
            store.grant_benefit(rich["id"], benefit_type)
        store.set_meter(rich["id"], UNKNOWN, consumed_units=2.5, credited_units=10)
        store.add_member(rich["id"], email="own@rich.io", external_id="m-own", role="owner")
        store.add_member(rich["id"], email="ann@rich.io", external_id="m-ann")
        store.assign_seat(rich["id"], sub["id"], email="ann@rich.io")
        server.rich = store.get_customer(rich["id"])  # type: ignore[attr-defined]
        yield server


def valid(
    polar: LocalPolarServer, method: str, path: str, params: Any = None, *, status: int,
    json_body: Any = None, check_request: bool = True,
) -> Any:  # fmt: skip
    """Send a request in the server's version; check the request (unless told) and the
    answer against that version's document; returns the decoded answer."""
    version = polar.api_version
    response = polar.request(method, path, params=params, json=json_body,
                             headers={"Polar-Version": version})  # fmt: skip
    assert response.status == status, response.body[:500]
    assert response.headers["polar-version"] == version
    query = f"?{urlencode(params, doseq=True)}" if params else ""
    body = None if json_body is None else json.dumps(json_body)
    if check_request:
        operation = contract.validate_request(method, f"{polar.url}{path}{query}", body,
                                              version=version)  # fmt: skip
    else:
        operation = contract.match_operation(method, path, version)[0]
    SEEN.setdefault(version, set()).add(operation)
    return contract.validate_response(operation, response.status, response.content_type,
                                      response.body, version=version)  # fmt: skip


@pytest.mark.parametrize(
    "params",
    [None, {"page": 2, "limit": 7}, {"sorting": ["-email", "name"]}, {"query": "a"},
     {"email": "RICH@example.com"}, {"metadata[plan]": "pro", "limit": 100}],
    ids=repr,
)  # fmt: skip
def test_customer_list(polar: LocalPolarServer, params: Any) -> None:
    valid(polar, "GET", "/v1/customers/", params, status=200)


def test_every_customer_and_state(polar: LocalPolarServer) -> None:
    """Seeded individuals and teams (some without an email) and their lazily made states."""
    body = valid(polar, "GET", "/v1/customers/", {"limit": 100}, status=200)
    assert {c["type"] for c in body["items"]} == {"individual", "team"}
    assert any(c["email"] is None for c in body["items"])
    for customer in polar.store.customers():
        valid(polar, "GET", f"/v1/customers/{customer['id']}/state", status=200)


def test_customer_crud(polar: LocalPolarServer) -> None:
    created = valid(polar, "POST", "/v1/customers/", status=201, json_body={
        "email": "new@example.com", "external_id": "new-1", "name": "New", "locale": "de",
        "billing_address": {"country": "FR"}, "tax_id": "FR61954506077"})  # fmt: skip
    team = valid(polar, "POST", "/v1/customers/", status=201, json_body={
        "type": "team", "name": "Team", "owner": {"email": "boss@team.io"}})  # fmt: skip
    assert team["type"] == "team" and created["tax_id"] == ["FR61954506077", "eu_vat"]
    path = f"/v1/customers/{created['id']}"
    assert valid(polar, "GET", path, status=200) == created
    valid(polar, "PATCH", path, json_body={"name": "Renamed", "type": "team"}, status=200)
    valid(polar, "GET", "/v1/customers/external/new-1", status=200)
    valid(polar, "PATCH", "/v1/customers/external/new-1", json_body={"tax_id": None}, status=200)
    valid(polar, "GET", "/v1/customers/external/new-1/state", status=200)
    valid(polar, "GET", f"{path}/payment-methods", status=200)
    valid(polar, "GET", "/v1/customers/external/new-1/payment-methods", status=200)
    valid(polar, "GET", "/v1/customers/export", status=200)
    valid(polar, "DELETE", "/v1/customers/external/new-1", status=204)
    valid(polar, "DELETE", f"/v1/customers/{team['id']}", status=204)
    for route in (path, f"{path}/state", f"{path}/payment-methods"):
        assert valid(polar, "GET", route, status=404)["error"] == "ResourceNotFound"
    valid(polar, "PATCH", path, json_body={"name": "Ghost"}, status=404)
    valid(polar, "DELETE", path, status=404)


def test_rich_team_state(polar: LocalPolarServer) -> None:
    rich = polar.rich  # type: ignore[attr-defined]
    state = valid(polar, "GET", f"/v1/customers/{rich['id']}/state", status=200)
    assert state["type"] == "team"
    assert state["active_subscriptions"][0]["seats"] == 1
    assert len(state["granted_benefits"]) == 6


def test_members(polar: LocalPolarServer) -> None:
    rich = polar.rich  # type: ignore[attr-defined]
    for params in (None, {"customer_id": rich["id"]}, {"external_customer_id": "rich-1"},
                   {"role": "owner", "sorting": "-created_at", "limit": 5}):  # fmt: skip
        valid(polar, "GET", "/v1/members/", params, status=200)
    base = f"/v1/customers/{rich['id']}/members"
    made = valid(polar, "POST", base, status=201, json_body={"email": "bob@rich.io",
                                                             "external_id": "m-bob"})  # fmt: skip
    ext = "/v1/customers/external/rich-1/members"
    cy = {"email": "cy@rich.io", "role": "billing_manager"}
    other = valid(polar, "POST", ext, status=201, json_body=cy)
    valid(polar, "GET", f"{base}/{made['id']}", status=200)
    valid(polar, "PATCH", f"{base}/{made['id']}", json_body={"name": "Bob"}, status=200)
    valid(polar, "GET", f"{ext}/m-bob", status=200)
    valid(polar, "PATCH", f"{ext}/m-bob", json_body={"role": "member"}, status=200)
    valid(polar, "DELETE", f"{ext}/m-bob", status=204)
    valid(polar, "DELETE", f"{base}/{other['id']}", status=204)
    valid(polar, "GET", f"{base}/{made['id']}", status=404)
    valid(polar, "GET", f"{ext}/m-bob", status=404)
    valid(polar, "PATCH", f"{ext}/m-bob", json_body={"name": "x"}, status=404)
    valid(polar, "DELETE", f"{base}/{made['id']}", status=404)
    solo = polar.store.add_customer(email="solo@example.com")
    body = valid(polar, "POST", f"/v1/customers/{solo['id']}/members", status=403,
                 json_body={"email": "x@example.com"})  # fmt: skip
    assert body["error"] == "NotPermitted"
    valid(polar, "POST", base, status=422, json_body={"name": "no email"}, check_request=False)
    valid(polar, "GET", "/v1/members/", {"role": "boss"}, status=422, check_request=False)


def test_products_and_benefits(polar: LocalPolarServer) -> None:
    products = valid(polar, "GET", "/v1/products/", {"limit": 100}, status=200)["items"]
    for params in ({"is_recurring": "true", "sorting": "-name"}, {"query": "pro"},
                   {"benefit_id": products[0]["benefits"][0]["id"]}):  # fmt: skip
        valid(polar, "GET", "/v1/products/", params, status=200)
    valid(polar, "GET", f"/v1/products/{products[0]['id']}", status=200)
    benefits = valid(polar, "GET", "/v1/benefits/", {"limit": 100}, status=200)["items"]
    assert len({b["type"] for b in benefits}) == 6
    valid(polar, "GET", "/v1/benefits/", {"type": "discord", "sorting": "description"},
          status=200)  # fmt: skip
    valid(polar, "GET", f"/v1/benefits/{benefits[0]['id']}", status=200)
    valid(polar, "GET", f"/v1/products/{UNKNOWN}", status=404)
    valid(polar, "GET", f"/v1/benefits/{UNKNOWN}", status=404)
    valid(polar, "GET", "/v1/products/nope", status=422, check_request=False)
    valid(polar, "GET", "/v1/benefits/", {"limit": 0}, status=422, check_request=False)


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email"}, {"name": "no email"}, {"email": "m@example.com", "tax_id": 12},
     {"email": "m@example.com", "type": "company"}, {"type": "team", "name": "no owner"},
     {"email": "RICH@example.com"}, {"email": "m@example.com", "locale": 5}, []],
    ids=repr,
)  # fmt: skip
def test_create_422(polar: LocalPolarServer, body: Any) -> None:
    before = len(polar.store)
    valid(polar, "POST", "/v1/customers/", json_body=body, status=422, check_request=False)
    assert len(polar.store) == before


def test_zz_every_operation_was_checked(polar: LocalPolarServer) -> None:
    """The tests above went through every operation of the version's document."""
    assert set(contract.operations(polar.api_version)) <= SEEN.get(polar.api_version, set())


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["2025-10", *VERSIONS])
def test_webhooks_match_their_version(version: str) -> None:
    """Every event type the server sends, each body valid in the version's document."""
    contract.load_spec(version)
    receiver = Receiver()
    with LocalPolarServer(api_version=version, webhook_url=receiver.url,
                          webhook_secret="whsec") as polar:  # fmt: skip
        store = polar.store
        customer = store.add_customer(email="hook@example.com")
        store.update_customer(customer["id"], name="Hook")
        if version != "2025-10":
            member = store.add_member(customer["id"], email="m@hook.io", role="owner")
            store.update_member(member["id"], name="M")
            sub = store.start_subscription(customer["id"])
            seat = store.assign_seat(customer["id"], sub["id"], email="s@hook.io")
            store.claim_seat(seat["id"])
            store.revoke_seat(seat["id"])
            store.delete_member(member["id"])
            benefit = store.add_benefit("custom", "Support")
            store.update_benefit(benefit["id"], description="Priority support")
            product = store.add_product("Pro", benefit_ids=[benefit["id"]])
            store.update_product(product["id"], is_archived=True)
        store.delete_customer(customer["id"])
        assert polar.webhooks is not None and polar.webhooks.flush()
    receiver.httpd.shutdown()
    types = set()
    for _headers, body in receiver.received:
        types.add(contract.validate_webhook(body, version=version)["type"])
    expected = {"customer.created", "customer.updated", "customer.deleted",
                "customer.state_changed"}  # fmt: skip
    if version != "2025-10":
        expected |= {"member.created", "member.updated", "member.deleted",
                     "customer_seat.assigned", "customer_seat.claimed", "customer_seat.revoked",
                     "product.created", "product.updated", "benefit.created",
                     "benefit.updated"}  # fmt: skip
    assert types == expected
