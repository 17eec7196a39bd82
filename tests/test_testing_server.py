"""Behaviour of the local Polar server over HTTP: Polar's semantics, not just its shapes."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from polar_sync.testing import LocalPolarServer

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def polar() -> Iterator[LocalPolarServer]:
    with LocalPolarServer(api_version="2025-10") as server:
        yield server


def create(polar: LocalPolarServer, **body: Any) -> dict[str, Any]:
    response = polar.request("POST", "/v1/customers/", json=body)
    assert response.status == 201, response.body
    return response.json()


def errors(polar: LocalPolarServer, method: str, path: str, body: Any) -> list[dict[str, Any]]:
    response = polar.request(method, path, json=body)
    assert response.status == 422, response.body
    return response.json()["detail"]


def listing(polar: LocalPolarServer, params: Any = None) -> dict[str, Any]:
    response = polar.request("GET", "/v1/customers/", params=params)
    assert response.status == 200, response.body
    return response.json()


# -- customers ------------------------------------------------------------------------------


def test_create_fields(polar: LocalPolarServer) -> None:
    customer = create(polar, email="Ada@Example.com", name="Ada", external_id="u1",
                      metadata={"n": 1}, billing_address={"country": "GB", "city": "London"},
                      tax_id=["GB123456789", "gb_vat"])  # fmt: skip
    assert uuid.UUID(customer["id"]).version == 4
    assert ISO_Z.match(customer["created_at"])
    assert customer["modified_at"] is None
    assert customer["deleted_at"] is None
    assert customer["email"] == "Ada@Example.com"
    assert customer["email_verified"] is False
    assert customer["organization_id"] == polar.organization_id
    assert customer["billing_address"] == {
        "line1": None, "line2": None, "postal_code": None, "city": "London", "state": None,
        "country": "GB",
    }  # fmt: skip
    assert customer["tax_id"] == ["GB123456789", "gb_vat"]
    digest = hashlib.sha256(b"ada@example.com").hexdigest()
    assert customer["avatar_url"] == f"https://www.gravatar.com/avatar/{digest}?d=404"


def test_list_and_create_accept_both_trailing_slashes(polar: LocalPolarServer) -> None:
    assert polar.request("POST", "/v1/customers", json={"email": "a@example.com"}).status == 201
    assert polar.request("GET", "/v1/customers").json()["pagination"]["total_count"] == 1
    assert polar.request("GET", "/v1/customers/").json()["pagination"]["total_count"] == 1


def test_update_bumps_modified_at(polar: LocalPolarServer) -> None:
    customer = create(polar, email="a@example.com", metadata={"a": 1})
    path = f"/v1/customers/{customer['id']}"
    first = polar.request("PATCH", path, json={"name": "A", "metadata": {"b": True}}).json()
    assert first["name"] == "A"
    assert first["metadata"] == {"b": True}  # metadata is replaced, not merged
    assert first["modified_at"] is not None and ISO_Z.match(first["modified_at"])
    assert first["modified_at"] > first["created_at"]
    second = polar.request("PATCH", path, json={"email": "b@example.com"}).json()
    assert second["modified_at"] >= first["modified_at"]
    assert polar.request("GET", path).json() == second


def test_email_change_unverifies(polar: LocalPolarServer) -> None:
    customer = polar.store.add_customer(email="v@example.com", email_verified=True)
    path = f"/v1/customers/{customer['id']}"
    assert polar.request("PATCH", path, json={"name": "V"}).json()["email_verified"] is True
    changed = polar.request("PATCH", path, json={"email": "w@example.com"}).json()
    assert changed["email_verified"] is False


def test_soft_delete_by_id(polar: LocalPolarServer) -> None:
    customer = create(polar, email="gone@example.com", external_id="gone")
    keep = create(polar, email="keep@example.com")
    store = polar.store
    store.start_subscription(customer["id"])
    store.grant_benefit(customer["id"], "discord")
    store.set_meter(customer["id"], consumed_units=3)
    path = f"/v1/customers/{customer['id']}"

    response = polar.request("DELETE", path)
    assert (response.status, response.body) == (204, b"")

    not_found = {"error": "ResourceNotFound", "detail": "Not found"}
    for route in (path, f"{path}/state", f"{path}/balance", "/v1/customers/external/gone"):
        response = polar.request("GET", route)
        assert (response.status, response.json()) == (404, not_found)
    assert polar.request("DELETE", path).status == 404
    assert [c["id"] for c in listing(polar)["items"]] == [keep["id"]]
    export = polar.request("GET", "/v1/customers/export").body.decode()
    assert customer["id"] not in export and keep["id"] in export

    deleted = store.get_customer(customer["id"])
    assert deleted is not None
    assert deleted["deleted_at"] is not None and deleted["external_id"] is None
    state = store.get_state(customer["id"])
    assert state["active_subscriptions"] == state["granted_benefits"] == []
    assert state["active_meters"] == []
    # The email and the external id are free again.
    assert create(polar, email="GONE@example.com", external_id="gone")["id"] != customer["id"]


def test_soft_delete_by_external_id(polar: LocalPolarServer) -> None:
    customer = create(polar, email="x@example.com", external_id="x-1")
    response = polar.request("DELETE", "/v1/customers/external/x-1")
    assert (response.status, response.body) == (204, b"")
    assert polar.request("GET", f"/v1/customers/{customer['id']}").status == 404
    assert listing(polar)["pagination"]["total_count"] == 0


def test_external_id_with_reserved_characters(polar: LocalPolarServer) -> None:
    create(polar, email="s@example.com", external_id="a/b c")
    response = polar.request("GET", "/v1/customers/external/a%2Fb%20c")
    assert response.status == 200 and response.json()["external_id"] == "a/b c"


def test_wrong_method_is_405(polar: LocalPolarServer) -> None:
    customer = create(polar, email="m@example.com")
    response = polar.request("PUT", f"/v1/customers/{customer['id']}", json={})
    assert (response.status, response.json()) == (405, {"detail": "Method Not Allowed"})


def test_balance_route_can_be_removed(polar: LocalPolarServer) -> None:
    customer = polar.store.add_customer(balance=-250)
    path = f"/v1/customers/{customer['id']}/balance"
    assert polar.request("GET", path).json() == {"balance": -250, "currency": "USD"}
    polar.faults.balance_route = False
    response = polar.request("GET", path)
    assert response.status == 404
    assert response.json() == {"detail": "Not Found"}  # no "error": the route is missing
    assert polar.request("GET", f"/v1/customers/{customer['id']}/state").status == 200


def test_no_balance_route_at_construction() -> None:
    with LocalPolarServer(api_version="2025-10", balance_route=False) as polar:
        customer = polar.store.add_customer(external_id="balance")
        assert "error" not in polar.request("GET", f"/v1/customers/{customer['id']}/balance").json()
        # An external id spelled like the route is still a customer.
        assert polar.request("GET", "/v1/customers/external/balance").status == 200


def test_export_csv(polar: LocalPolarServer) -> None:
    store = polar.store
    store.add_customer(
        email="b@example.com",
        name="B, Jr.",
        external_id="b",
        metadata={"k": "v", "n": 2},
        tax_id=["911144442", "us_ein"],
        billing_address={
            "line1": "1 Main",
            "line2": "Apt 2",
            "city": "Austin",
            "state": "TX",
            "postal_code": "78701",
            "country": "US",
        },
    )
    store.add_customer(email="a@example.com")  # fmt: skip
    response = polar.request("GET", "/v1/customers/export")
    assert response.status == 200
    assert response.content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows[0] == [
        "ID", "External ID", "Created At", "Email", "Name", "Tax ID", "Billing Address Line 1",
        "Billing Address Line 2", "Billing Address City", "Billing Address State",
        "Billing Address Zip", "Billing Address Country", "Metadata",
    ]  # fmt: skip
    assert rows[1][1:] == [
        "b", rows[1][2], "b@example.com", "B, Jr.", "911144442", "1 Main", "Apt 2", "Austin",
        "TX", "78701", "US", '{"k": "v", "n": 2}',
    ]  # fmt: skip
    assert ISO_Z.match(rows[1][2])
    assert rows[2][3] == "a@example.com" and rows[2][5] == ""
    other_org = {"organization_id": "1dbfc517-0bbf-4301-9ba8-555ca42b9737"}
    assert polar.request("GET", "/v1/customers/export", params=other_org).body.count(b"\n") == 1


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"email": "nope"}, ["body", "email"], "value_error"),
        ({"email": "a@b"}, ["body", "email"], "value_error"),
        ({"email": "a b@example.com"}, ["body", "email"], "value_error"),
        ({}, ["body", "email"], "missing"),
        ({"email": 5}, ["body", "email"], "string_type"),
        ({"email": "m@example.com", "name": 5}, ["body", "name"], "string_type"),
        ({"email": "m@example.com", "metadata": {str(i): i for i in range(51)}},
         ["body", "metadata"], "too_long"),
        ({"email": "m@example.com", "metadata": {"k" * 41: 1}},
         ["body", "metadata", "k" * 41, "[key]"], "string_too_long"),
        ({"email": "m@example.com", "metadata": {"": 1}},
         ["body", "metadata", "", "[key]"], "string_too_short"),
        ({"email": "m@example.com", "metadata": {"k": "v" * 501}},
         ["body", "metadata", "k", "str"], "string_too_long"),
        ({"email": "m@example.com", "metadata": {"k": ""}},
         ["body", "metadata", "k", "str"], "string_too_short"),
        ({"email": "m@example.com", "metadata": {"k": {"nested": 1}}},
         ["body", "metadata", "k", "str"], "string_type"),
        ({"email": "m@example.com", "metadata": []}, ["body", "metadata"], "dict_type"),
        ({"email": "m@example.com", "tax_id": ["1"]}, ["body", "tax_id"], "too_short"),
        ({"email": "m@example.com", "tax_id": ["1", "us_ein", "x"]}, ["body", "tax_id"],
         "too_long"),
        ({"email": "m@example.com", "tax_id": ["1", "xx"]}, ["body", "tax_id", 1], "enum"),
        ({"email": "m@example.com", "tax_id": {"v": 1}}, ["body", "tax_id"], "tuple_type"),
        ({"email": "m@example.com", "billing_address": {"country": "XX"}},
         ["body", "billing_address", "country"], "enum"),
        ({"email": "m@example.com", "billing_address": {"country": "IR"}},
         ["body", "billing_address", "country"], "enum"),
        ({"email": "m@example.com", "billing_address": {"line1": "x"}},
         ["body", "billing_address", "country"], "missing"),
        ({"email": "m@example.com", "organization_id": "nope"}, ["body", "organization_id"],
         "uuid_parsing"),
    ],
)  # fmt: skip
def test_create_validation(
    polar: LocalPolarServer, body: dict[str, Any], loc: list[Any], type_: str
) -> None:
    found = errors(polar, "POST", "/v1/customers/", body)
    assert {"loc": loc, "type": type_} in [{"loc": e["loc"], "type": e["type"]} for e in found]
    assert all(e["msg"] for e in found)
    assert len(polar.store) == 0


def test_metadata_limits_are_inclusive(polar: LocalPolarServer) -> None:
    metadata: dict[str, Any] = {f"k{i}": i for i in range(47)}
    metadata.update({"k" * 40: "v" * 500, "f": 1.5, "b": False})
    assert len(metadata) == 50
    assert create(polar, email="m@example.com", metadata=metadata)["metadata"] == metadata


def test_duplicates_are_rejected(polar: LocalPolarServer) -> None:
    create(polar, email="dup@example.com", external_id="dup")
    found = errors(polar, "POST", "/v1/customers/", {"email": "DUP@example.com"})
    assert found[0]["loc"] == ["body", "email"]
    assert "already exists" in found[0]["msg"]
    found = errors(polar, "POST", "/v1/customers/", {"email": "o@example.com",
                                                     "external_id": "dup"})  # fmt: skip
    assert found[0]["loc"] == ["body", "external_id"]
    other = create(polar, email="other@example.com")
    found = errors(polar, "PATCH", f"/v1/customers/{other['id']}", {"email": "Dup@Example.com"})
    assert found[0]["loc"] == ["body", "email"]
    assert len(polar.store) == 2


def test_external_id_is_set_once(polar: LocalPolarServer) -> None:
    customer = create(polar, email="e@example.com")
    path = f"/v1/customers/{customer['id']}"
    taken = create(polar, email="t@example.com", external_id="taken")
    found = errors(polar, "PATCH", path, {"external_id": "taken"})
    assert "already exists" in found[0]["msg"]
    assert (
        polar.request("PATCH", path, json={"external_id": "mine"}).json()["external_id"] == "mine"
    )
    assert polar.request("PATCH", path, json={"external_id": "mine"}).status == 200  # same value
    for new in ("other", None):
        found = errors(polar, "PATCH", path, {"external_id": new})
        assert found[0]["loc"] == ["body", "external_id"]
        assert found[0]["msg"] == "Customer external ID cannot be updated."
    # The by-external-id update has no external_id field: it is ignored.
    response = polar.request("PATCH", "/v1/customers/external/taken", json={"external_id": "z"})
    assert response.json()["external_id"] == "taken" == taken["external_id"]
    assert polar.store.get_customer(customer["id"])["external_id"] == "mine"  # type: ignore[index]


def test_update_by_external_id(polar: LocalPolarServer) -> None:
    create(polar, email="u@example.com", external_id="u")
    response = polar.request(
        "PATCH", "/v1/customers/external/u", json={"name": "U", "tax_id": None}
    )
    assert response.status == 200 and response.json()["name"] == "U"
    found = errors(polar, "PATCH", "/v1/customers/external/u", {"metadata": {"k": None}})
    assert found[0]["loc"][:3] == ["body", "metadata", "k"]


# -- pagination, filters, sorting -----------------------------------------------------------


def test_pagination_math(polar: LocalPolarServer) -> None:
    for i in range(25):
        polar.store.add_customer(email=f"p{i:02d}@example.com")
    assert listing(polar)["pagination"] == {"total_count": 25, "max_page": 3}
    assert len(listing(polar)["items"]) == 10  # default limit
    assert len(listing(polar, {"page": 3})["items"]) == 5
    assert listing(polar, {"page": 4})["items"] == []
    assert listing(polar, {"limit": 100})["pagination"]["max_page"] == 1
    assert listing(polar, {"limit": 1})["pagination"]["max_page"] == 25
    for sorting in ("created_at", "-created_at"):
        seen = []
        for page in (1, 2, 3):
            items = listing(polar, {"page": page, "limit": 10, "sorting": sorting})["items"]
            seen += [item["email"] for item in items]
        expected = [f"p{i:02d}@example.com" for i in range(25)]
        assert seen == (expected if sorting == "created_at" else expected[::-1])


@pytest.fixture
def people(polar: LocalPolarServer) -> LocalPolarServer:
    add = polar.store.add_customer
    add(
        email="carol@example.com",
        name="Carol",
        external_id="ext-c",
        metadata={"plan": "pro", "seats": 3, "beta": True},
    )
    add(email="alice@example.com", name="alice", metadata={"plan": "free", "seats": 1})
    add(email="bob@work.io", name=None, external_id="ALICE-ref", metadata={"plan": "team"})
    add(email="dave@example.com", name="Dave", metadata={"plan": "pro", "beta": False})
    return polar  # fmt: skip


def emails(polar: LocalPolarServer, params: Any) -> list[str]:
    return [c["email"] for c in listing(polar, params)["items"]]


def test_filters(people: LocalPolarServer) -> None:
    assert emails(people, {"email": "ALICE@example.com"}) == ["alice@example.com"]
    assert emails(people, {"email": "alice@"}) == []  # exact, not a substring
    assert emails(people, {"query": "alice", "sorting": "created_at"}) == [
        "alice@example.com", "bob@work.io",  # name/email, then external id
    ]  # fmt: skip
    assert emails(people, {"query": "WORK"}) == ["bob@work.io"]
    assert emails(people, {"metadata[plan]": "pro", "sorting": "created_at"}) == [
        "carol@example.com", "dave@example.com",
    ]  # fmt: skip
    both = {"metadata[plan]": ["free", "team"], "sorting": "email"}
    assert emails(people, both) == ["alice@example.com", "bob@work.io"]
    assert emails(people, {"metadata[plan]": "pro", "metadata[beta]": "true"}) == [
        "carol@example.com"
    ]
    assert emails(people, {"metadata[seats]": "1"}) == ["alice@example.com"]
    assert emails(people, {"metadata[missing]": "x"}) == []
    combined = {"query": "example", "metadata[plan]": "pro", "email": "dave@example.com"}
    assert emails(people, combined) == ["dave@example.com"]
    assert listing(people, {"metadata[plan]": "pro", "limit": 1})["pagination"] == {
        "total_count": 2, "max_page": 2,
    }  # fmt: skip


def test_sorting(people: LocalPolarServer) -> None:
    order = ["carol@example.com", "alice@example.com", "bob@work.io", "dave@example.com"]
    assert emails(people, None) == order[::-1]  # default -created_at
    assert emails(people, {"sorting": "created_at"}) == order
    assert emails(people, {"sorting": "email"}) == sorted(order)
    assert emails(people, {"sorting": "-email"}) == sorted(order, reverse=True)
    # Names sort with NULLs last ascending and first descending, as in Postgres.
    names = [c["name"] for c in listing(people, {"sorting": "name"})["items"]]
    assert names == ["Carol", "Dave", "alice", None]
    names = [c["name"] for c in listing(people, {"sorting": "-name"})["items"]]
    assert names == [None, "alice", "Dave", "Carol"]


def test_several_sortings_apply_in_order(polar: LocalPolarServer) -> None:
    for email, name in [("a1@x.io", "Same"), ("b@x.io", "Other"), ("a2@x.io", "Same")]:
        polar.store.add_customer(email=email, name=name)
    params = [("sorting", "-name"), ("sorting", "created_at")]
    assert emails(polar, params) == ["a1@x.io", "a2@x.io", "b@x.io"]
    params = [("sorting", "-name"), ("sorting", "-created_at")]
    assert emails(polar, params) == ["a2@x.io", "a1@x.io", "b@x.io"]


def test_query_validation(polar: LocalPolarServer) -> None:
    def detail(params: Any) -> dict[str, Any]:
        response = polar.request("GET", "/v1/customers/", params=params)
        assert response.status == 422
        return response.json()["detail"][0]

    assert detail({"limit": 101}) | {"msg": ""} == {
        "loc": ["query", "limit"], "type": "less_than_equal", "msg": "", "input": "101",
    }  # fmt: skip
    assert detail({"limit": 0})["type"] == "greater_than"
    assert detail({"page": -1})["loc"] == ["query", "page"]
    assert detail({"page": "x"})["type"] == "int_parsing"
    assert detail([("sorting", "email"), ("sorting", "age")])["loc"] == ["query", "sorting", 1]
    assert detail({"organization_id": "123"})["loc"] == ["query", "organization_id"]


# -- the handle's view of the API ------------------------------------------------------------


def test_request_log(polar: LocalPolarServer) -> None:
    customer = create(polar, email="l@example.com")
    polar.request("GET", "/v1/customers/", params={"limit": 5, "sorting": ["email", "-name"]})
    polar.request("GET", "/v1/nothing")
    polar.request("GET", f"/v1/customers/{customer['id']}", token="wrong")
    log = polar.store.requests
    assert [(r.method, r.path, r.status, r.operation) for r in log] == [
        ("POST", "/v1/customers/", 201, "customers:create"),
        ("GET", "/v1/customers/", 200, "customers:list"),
        ("GET", "/v1/nothing", 404, None),
        ("GET", f"/v1/customers/{customer['id']}", 401, "customers:get"),
    ]
    assert log[1].query == {"limit": ["5"], "sorting": ["email", "-name"]}
    assert polar.store.request_counts["customers:list"] == 1
    assert polar.store.status_counts[404] == 1
    polar.store.reset_requests()
    assert polar.store.requests == [] and not polar.store.request_counts


def test_events_from_api(polar: LocalPolarServer) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = polar.store.subscribe(lambda kind, payload: seen.append((kind, payload)))
    customer = create(polar, email="ev@example.com")
    polar.request("PATCH", f"/v1/customers/{customer['id']}", json={"name": "Ev"})
    polar.request("DELETE", f"/v1/customers/{customer['id']}")
    assert [kind for kind, _ in seen] == [
        "customer.created", "customer.state_changed", "customer.updated",
        "customer.state_changed", "customer.deleted", "customer.state_changed",
    ]  # fmt: skip
    assert seen[0][1] == customer
    assert seen[3][1]["name"] == "Ev" and "active_subscriptions" in seen[3][1]
    assert seen[4][1]["deleted_at"] is not None
    unsubscribe()
    create(polar, email="quiet@example.com")
    assert len(seen) == 6


def test_failing_subscriber_does_not_break_the_api(polar: LocalPolarServer) -> None:
    def boom(kind: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("webhook target down")

    polar.store.subscribe(boom)
    assert polar.request("POST", "/v1/customers/", json={"email": "b@example.com"}).status == 201
