"""Every answer of the local Polar server, errors included, matches the 2025-10 contract."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from polar_sync.testing import LocalPolarServer, RawResponse
from tests import contract


@pytest.fixture(scope="module")
def polar() -> Iterator[LocalPolarServer]:
    contract.load_spec()
    with LocalPolarServer(api_version="2025-10", customers=60, seed=7) as server:
        store = server.store
        rich = store.add_customer(
            email="rich@example.com",
            external_id="rich-1",
            name="Rich Customer",
            metadata={"plan": "pro", "seats": 3, "ratio": 0.5, "beta": True},
            billing_address={"line1": "1 Main St", "city": "Austin", "state": "TX",
                             "postal_code": "78701", "country": "US"},
            tax_id=["911144442", "us_ein"],
            balance=1234,
        )  # fmt: skip
        meter_id = "d498a884-e2cd-4d3e-8002-f536468a8b22"
        store.start_subscription(
            rich["id"],
            amount=2900,
            meters=[{"meter_id": meter_id, "consumed_units": 25, "credited_units": 100}],
        )
        store.start_subscription(rich["id"], status="trialing", recurring_interval="year")
        for benefit_type in (
            "custom", "discord", "github_repository", "downloadables", "license_keys",
            "meter_credit",
        ):  # fmt: skip
            store.grant_benefit(rich["id"], benefit_type)
        store.set_meter(rich["id"], meter_id, consumed_units=25.5, credited_units=100)
        server.rich = rich  # type: ignore[attr-defined]
        yield server


def call(
    polar: LocalPolarServer,
    method: str,
    path: str,
    params: dict[str, Any] | list[tuple[str, Any]] | None = None,
    json: Any = None,
    *,
    check_request: bool = True,
    **kwargs: Any,
) -> tuple[str, RawResponse]:
    """Send a request, check it is a contract request, return (operationId, response)."""
    response = polar.request(method, path, params=params, json=json, **kwargs)
    query = f"?{urlencode(params, doseq=True)}" if params else ""
    body = None if json is None else __import__("json").dumps(json)
    if check_request:
        operation = contract.validate_request(method, f"{polar.url}{path}{query}", body)
    else:
        operation = contract.match_operation(method, path)[0]
    return operation, response


def valid(polar: LocalPolarServer, *args: Any, status: int, **kwargs: Any) -> Any:
    operation, response = call(polar, *args, **kwargs)
    assert response.status == status, response.body[:500]
    return contract.validate_response(
        operation, response.status, response.content_type, response.body
    )


@pytest.mark.parametrize(
    "params",
    [
        None,
        {"page": 2, "limit": 7},
        {"limit": 100, "sorting": "created_at"},
        {"sorting": ["-email"]},
        {"sorting": ["name", "-created_at"]},
        {"sorting": ["-name", "email"], "limit": 50},
        {"query": "a"},
        {"email": "RICH@example.com"},
        {"metadata[plan]": ["pro", "team"], "limit": 100},
        {"metadata[seats]": 3},
        {"page": 99},
    ],
    ids=repr,
)
def test_list(polar: LocalPolarServer, params: dict[str, Any] | None) -> None:
    body = valid(polar, "GET", "/v1/customers/", params, status=200)
    assert body["pagination"]["total_count"] >= len(body["items"])


def test_list_by_organization(polar: LocalPolarServer) -> None:
    org = polar.organization_id
    body = valid(polar, "GET", "/v1/customers/", {"organization_id": org}, status=200)
    # Every customer of the store (other tests of this module add some) is the org's.
    assert body["pagination"]["total_count"] == len(polar.store.customers()) > 0
    other = "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
    params = [("organization_id", other), ("organization_id", org)]
    assert valid(polar, "GET", "/v1/customers/", params, status=200)["items"]
    body = valid(polar, "GET", "/v1/customers/", {"organization_id": other}, status=200)
    assert body == {"items": [], "pagination": {"total_count": 0, "max_page": 0}}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"page": "two"},
        {"sorting": "size"},
        {"sorting": ["email", "-size"]},
        {"organization_id": "not-a-uuid"},
    ],
    ids=repr,
)
def test_list_422(polar: LocalPolarServer, params: dict[str, Any]) -> None:
    body = valid(polar, "GET", "/v1/customers/", params, status=422, check_request=False)
    assert body["detail"][0]["loc"][0] == "query"


def test_create_get_update_delete(polar: LocalPolarServer) -> None:
    created = valid(
        polar, "POST", "/v1/customers/",
        json={"email": "new@example.com", "external_id": "new-1", "name": "New",
              "metadata": {"a": "b"}, "billing_address": {"country": "FR"},
              "tax_id": ["FR61954506077", "eu_vat"]},
        status=201,
    )  # fmt: skip
    path = f"/v1/customers/{created['id']}"
    assert valid(polar, "GET", path, status=200) == created
    valid(polar, "PATCH", path, json={"name": "Renamed", "metadata": {}}, status=200)
    valid(polar, "GET", "/v1/customers/external/new-1", status=200)
    valid(polar, "PATCH", "/v1/customers/external/new-1", json={"name": "X"}, status=200)
    valid(polar, "GET", f"{path}/state", status=200)
    valid(polar, "GET", "/v1/customers/external/new-1/state", status=200)
    valid(polar, "GET", f"{path}/balance", status=200)
    valid(polar, "DELETE", path, status=204)
    for route in (path, f"{path}/state", f"{path}/balance"):
        assert valid(polar, "GET", route, status=404)["error"] == "ResourceNotFound"
    valid(polar, "PATCH", path, json={"name": "Ghost"}, status=404)
    valid(polar, "DELETE", path, status=404)


def test_external_delete_and_404s(polar: LocalPolarServer) -> None:
    valid(polar, "POST", "/v1/customers/", json={"email": "ext@example.com",
                                                "external_id": "ext-9"}, status=201)  # fmt: skip
    valid(polar, "DELETE", "/v1/customers/external/ext-9", status=204)
    for method, path in (
        ("GET", "/v1/customers/external/ext-9"),
        ("PATCH", "/v1/customers/external/ext-9"),
        ("DELETE", "/v1/customers/external/ext-9"),
        ("GET", "/v1/customers/external/ext-9/state"),
    ):
        json = {"name": "x"} if method == "PATCH" else None
        assert valid(polar, method, path, json=json, status=404)["detail"] == "Not found"


def test_rich_state_and_balance(polar: LocalPolarServer) -> None:
    rich = polar.rich  # type: ignore[attr-defined]
    state = valid(polar, "GET", f"/v1/customers/{rich['id']}/state", status=200)
    assert len(state["active_subscriptions"]) == 2
    assert {g["benefit_type"] for g in state["granted_benefits"]} == {
        "custom", "discord", "github_repository", "downloadables", "license_keys",
        "meter_credit",
    }  # fmt: skip
    assert state["active_meters"][0]["balance"] == 74.5
    balance = valid(polar, "GET", f"/v1/customers/{rich['id']}/balance", status=200)
    assert balance == {"balance": 1234, "currency": "USD"}
    assert valid(polar, "GET", "/v1/customers/external/rich-1/state", status=200) == state


def test_seeded_states_match(polar: LocalPolarServer) -> None:
    """Lazily generated seeded states, all of them, are valid CustomerStates."""
    for customer in polar.store.customers():
        valid(polar, "GET", f"/v1/customers/{customer['id']}/state", status=200)


def test_export(polar: LocalPolarServer) -> None:
    rows = valid(polar, "GET", "/v1/customers/export", status=200)
    assert len(rows) == 1 + len(polar.store)
    org = {"organization_id": polar.organization_id}
    assert len(valid(polar, "GET", "/v1/customers/export", org, status=200)) == len(rows)
    params = {"organization_id": "nope"}
    valid(polar, "GET", "/v1/customers/export", params, status=422, check_request=False)


BAD_BODIES = [
    {"email": "not-an-email"},
    {"name": "no email"},
    {"email": "m@example.com", "metadata": {f"k{i}": i for i in range(51)}},
    {"email": "m@example.com", "metadata": {"k" * 41: "v"}},
    {"email": "m@example.com", "metadata": {"k": "v" * 501}},
    {"email": "m@example.com", "metadata": {"k": ""}},
    {"email": "m@example.com", "metadata": {"k": None}},
    {"email": "m@example.com", "metadata": {"k": [1]}},
    {"email": "m@example.com", "tax_id": ["123"]},
    {"email": "m@example.com", "tax_id": ["123", "xx_vat"]},
    {"email": "m@example.com", "tax_id": "123"},
    {"email": "m@example.com", "billing_address": {"country": "XX"}},
    {"email": "m@example.com", "billing_address": {"country": "RU"}},
    {"email": "m@example.com", "billing_address": {"city": "Paris"}},
    {"email": "RICH@example.com"},
    {"email": "m@example.com", "external_id": "rich-1"},
    [],
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=repr)
def test_create_422(polar: LocalPolarServer, body: Any) -> None:
    before = len(polar.store)
    detail = valid(polar, "POST", "/v1/customers/", json=body, status=422, check_request=False)
    assert detail["detail"]
    assert len(polar.store) == before


def test_invalid_json_body_422(polar: LocalPolarServer) -> None:
    operation, response = call(polar, "POST", "/v1/customers/", body=b"{oops",
                               check_request=False)  # fmt: skip
    assert response.status == 422
    body = contract.validate_response(operation, 422, response.content_type, response.body)
    assert body["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "RICH@EXAMPLE.com"},
        {"external_id": "another"},
        {"metadata": {"": "empty key"}},
        {"billing_address": {"country": "ZZ"}},
    ],
    ids=repr,
)
def test_update_422(polar: LocalPolarServer, body: dict[str, Any]) -> None:
    other = polar.store.add_customer(external_id=f"fixed-{len(polar.store)}")
    path = f"/v1/customers/{other['id']}"
    valid(polar, "PATCH", path, json=body, status=422, check_request=False)
    ext_path = f"/v1/customers/external/{other['external_id']}"
    if "external_id" not in body:
        valid(polar, "PATCH", ext_path, json=body, status=422, check_request=False)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers/not-a-uuid"),
        ("PATCH", "/v1/customers/not-a-uuid"),
        ("DELETE", "/v1/customers/not-a-uuid"),
        ("GET", "/v1/customers/not-a-uuid/state"),
        ("GET", "/v1/customers/not-a-uuid/balance"),
    ],
)
def test_malformed_id_422(polar: LocalPolarServer, method: str, path: str) -> None:
    json = {"name": "x"} if method == "PATCH" else None
    body = valid(polar, method, path, json=json, status=422, check_request=False)
    assert body["detail"][0]["loc"] == ["path", "id"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/customers/"),
        ("POST", "/v1/customers/"),
        ("GET", "/v1/customers/export"),
        ("GET", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b"),
        ("PATCH", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b"),
        ("DELETE", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b"),
        ("GET", "/v1/customers/external/usr_1"),
        ("PATCH", "/v1/customers/external/usr_1"),
        ("DELETE", "/v1/customers/external/usr_1"),
        ("GET", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b/state"),
        ("GET", "/v1/customers/external/usr_1/state"),
        ("GET", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b/balance"),
    ],
)
@pytest.mark.parametrize("token", [None, "polar_oat_wrong"])
def test_401(polar: LocalPolarServer, method: str, path: str, token: str | None) -> None:
    _operation, response = call(polar, method, path, token=token, check_request=False)
    assert response.status == 401
    assert response.content_type.startswith("application/json")
    body = response.json()
    assert body["error"] == "Unauthorized"
    assert isinstance(body["detail"], str)


def test_429(polar: LocalPolarServer) -> None:
    polar.faults.rate_limit = 0
    try:
        _operation, response = call(polar, "GET", "/v1/customers/")
    finally:
        polar.faults.rate_limit = None
    assert response.status == 429
    assert int(response.headers["retry-after"]) >= 1
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/unknown"), ("GET", "/v1/customers/a/b/c"), ("GET", "/")],
)
def test_unknown_route(polar: LocalPolarServer, method: str, path: str) -> None:
    response = polar.request(method, path)
    assert response.status == 404
    assert response.json() == {"detail": "Not Found"}
