"""Conformance: the client's requests and the tests' fixtures against the contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import responses

from polar_sync.client import PolarClient
from tests import contract
from tests.conftest import BASE_URL, FIXTURES, TOKEN, load_fixture

CID = "992fae2a-2a17-4b7a-8d9e-e287cf90131b"

# Fixture file -> the contract schema it must satisfy.
FIXTURE_SCHEMAS = {
    "customer": "Customer",
    "customer_nulls": "Customer",
    "state": "CustomerState",
    "state_empty": "CustomerState",
    "balance": "CustomerBalance",
    "error_404": "ResourceNotFound",
    "error_422_email": "HTTPValidationError",
}


@pytest.fixture(autouse=True)
def _spec():
    contract.load_spec()


def test_every_fixture_is_listed():
    on_disk = {p.stem for p in FIXTURES.glob("*.json")}
    # The 2026-10 fixture is checked against the later spec below.
    assert on_disk - {"customer_2026_team"} == set(FIXTURE_SCHEMAS)


@pytest.mark.parametrize(("name", "schema"), sorted(FIXTURE_SCHEMAS.items()))
def test_fixture_matches_the_contract(name, schema):
    contract.validate_schema(schema, load_fixture(name))


def test_2026_fixture_is_not_a_2025_customer_but_is_a_2026_one():
    # A team customer without email is exactly what the 2025 contract forbids:
    # the client must accept it anyway (forward compatibility).
    with pytest.raises(AssertionError):
        contract.validate_schema("Customer", load_fixture("customer_2026_team"))
    contract.validate_schema(
        "Customer", load_fixture("customer_2026_team"), path=contract.later_spec_path()
    )


def test_validator_rejects_what_the_contract_does_not_allow():
    with pytest.raises(AssertionError, match="not in the contract"):
        contract.validate_request("GET", f"{BASE_URL}/v1/customers/?pagesize=10", None)
    with pytest.raises(AssertionError, match="query 'sorting'"):
        contract.validate_request("GET", f"{BASE_URL}/v1/customers/?sorting=created", None)
    with pytest.raises(AssertionError, match="deepObject"):
        contract.validate_request("GET", f"{BASE_URL}/v1/customers/?metadata=x", None)
    with pytest.raises(AssertionError, match="request body"):
        contract.validate_request("POST", f"{BASE_URL}/v1/customers/", b'{"name": "no email"}')
    with pytest.raises(AssertionError, match="not an operation"):
        contract.validate_request("PUT", f"{BASE_URL}/v1/customers/{CID}", b"{}")
    with pytest.raises(AssertionError, match="path parameter"):
        contract.validate_request("GET", f"{BASE_URL}/v1/customers/not-a-uuid", None)
    with pytest.raises(AssertionError, match="may answer"):
        contract.validate_response("customers:get", 201, "application/json", b"{}")
    bad = dict(load_fixture("customer"), email_verified="yes")
    with pytest.raises(AssertionError, match="email_verified"):
        contract.validate_response("customers:get", 200, "application/json", json.dumps(bad))


def _exercise_every_operation(client: PolarClient) -> None:
    client.list(
        organization_id=["1dbfc517-0bbf-4301-9ba8-555ca42b9737"],
        email="ada@example.com",
        query="ada",
        page=1,
        limit=100,
        sorting=["created_at", "-name"],
        metadata={"plan": "pro", "seats": 5, "beta": True},
    )
    client.create(
        {
            "email": "ada@example.com",
            "name": "Ada",
            "external_id": "usr_1337",
            "metadata": {"plan": "pro"},
            "billing_address": {"country": "FR", "city": "Paris"},
            "tax_id": ["FR61954506077", "eu_vat"],
        }
    )
    client.export(organization_id="1dbfc517-0bbf-4301-9ba8-555ca42b9737")
    client.get(CID)
    client.update(CID, {"name": "Ada King", "metadata": {"seats": 6}, "tax_id": ["1", "us_ein"]})
    client.delete(CID)
    client.get_external("usr_1337")
    client.update_external("usr_1337", {"email": "ada@example.org", "tax_id": ["2", "eu_vat"]})
    client.delete_external("usr_1337")
    client.get_state(CID)
    client.get_state_external("usr_1337")
    if client.api_version is None:
        client.get_balance(CID)  # only a server of the 2025-10 era has /balance


# The 11 customer operations polar_sync calls in every version, and /balance in 2025-10.
CLIENT_OPERATIONS = {
    "customers:list",
    "customers:create",
    "customers:export",
    "customers:get",
    "customers:update",
    "customers:delete",
    "customers:get_external",
    "customers:update_external",
    "customers:delete_external",
    "customers:get_state",
    "customers:get_state_external",
}


@pytest.mark.parametrize("api_version", [None, "2026-04", "2026-10", "2027-01"])
def test_every_request_of_every_operation_matches_the_version_spoken(api_version):
    """Each request validates against the document of the version the client speaks
    (None: 2025-10's), the Polar-Version header names it, and tax_id is sent as that
    version takes it (a pair in 2025-10, a string in 2026)."""
    version = api_version or "2025-10"
    contract.load_spec(version)
    customer = load_fixture("customer")
    with responses.RequestsMock() as mock:
        mock.get(
            f"{BASE_URL}/v1/customers/",
            json={"items": [customer], "pagination": {"total_count": 1, "max_page": 1}},
        )
        mock.post(f"{BASE_URL}/v1/customers/", json=customer, status=201)
        mock.get(
            f"{BASE_URL}/v1/customers/export",
            body=",".join(contract.EXPORT_HEADER),
            content_type="text/csv",
        )
        mock.get(f"{BASE_URL}/v1/customers/{CID}", json=customer)
        mock.patch(f"{BASE_URL}/v1/customers/{CID}", json=customer)
        mock.delete(f"{BASE_URL}/v1/customers/{CID}", status=204)
        mock.get(f"{BASE_URL}/v1/customers/external/usr_1337", json=customer)
        mock.patch(f"{BASE_URL}/v1/customers/external/usr_1337", json=customer)
        mock.delete(f"{BASE_URL}/v1/customers/external/usr_1337", status=204)
        mock.get(f"{BASE_URL}/v1/customers/{CID}/state", json=load_fixture("state"))
        mock.get(f"{BASE_URL}/v1/customers/external/usr_1337/state", json=load_fixture("state"))
        if api_version is None:
            mock.get(f"{BASE_URL}/v1/customers/{CID}/balance", json=load_fixture("balance"))
        _exercise_every_operation(
            PolarClient(access_token=TOKEN, server=BASE_URL, api_version=api_version)
        )
        seen = {
            contract.validate_request(
                c.request.method, c.request.url, c.request.body, version=version
            )
            for c in mock.calls
        }
        assert {c.request.headers.get("Polar-Version") for c in mock.calls} == {api_version}
        tax_ids = [json.loads(c.request.body)["tax_id"] for c in mock.calls if c.request.body]
    balance = {"customers:get_balance"} if api_version is None else set()
    assert seen == CLIENT_OPERATIONS | balance
    if api_version is None:
        assert seen == set(contract.operations()), "all 12 operations of 2025-10"
        assert tax_ids == [["FR61954506077", "eu_vat"], ["1", "us_ein"], ["2", "eu_vat"]]
    else:
        assert tax_ids == ["FR61954506077", "1", "2"]


def test_spec_path_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv("POLAR_OPENAPI_SPEC", str(tmp_path / "nowhere.json"))
    assert contract.spec_path() == Path(tmp_path / "nowhere.json")
    with pytest.raises(pytest.skip.Exception, match=r"nowhere\.json"):
        contract.load_spec()
    assert os.environ["POLAR_OPENAPI_SPEC"].endswith("nowhere.json")


# -- the catalogue (2026 versions) -----------------------------------------------------------

PRODUCT_ID = "9f3c2a7e-1b4d-4c8e-9a6f-2d5e8b1c4a70"
BENEFIT_ID = "4b8e1d2c-7a3f-4e9b-8c1d-5f2a6e9b3c81"


def _catalog_answers() -> tuple[dict, dict]:
    from polar_sync.testing.catalog import benefit_dict, product_dict

    org = "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
    benefit = benefit_dict(
        id=BENEFIT_ID, type="custom", description="Support", organization_id=org, created_us=0
    )
    product = product_dict(
        id=PRODUCT_ID, name="Pro", organization_id=org, created_us=0, amount=900,
        currency="usd", recurring_interval="month", benefits=[benefit],
    )  # fmt: skip
    return product, benefit


@pytest.mark.parametrize("version", ["2026-04", "2026-10"])
def test_every_catalogue_request_and_answer_matches_the_2026_documents(version):
    product, benefit = _catalog_answers()
    page = {"pagination": {"total_count": 1, "max_page": 1}}
    with responses.RequestsMock() as mock:
        mock.get(f"{BASE_URL}/v1/products/", json={"items": [product], **page})
        mock.get(f"{BASE_URL}/v1/benefits/", json={"items": [benefit], **page})
        mock.get(f"{BASE_URL}/v1/products/{PRODUCT_ID}", json=product)
        mock.get(f"{BASE_URL}/v1/benefits/{BENEFIT_ID}", json=benefit)
        client = PolarClient(access_token=TOKEN, server=BASE_URL, api_version=version)
        org = product["organization_id"]
        client.list_products(
            page=1, limit=100, sorting=["created_at"], organization_id=[org], is_archived=False
        )
        client.list_benefits(page=2, limit=10, sorting="-created_at")
        assert [p["id"] for p in client.iter_products(sorting=["created_at"])] == [PRODUCT_ID]
        assert [b["id"] for b in client.iter_benefits(sorting=["created_at"])] == [BENEFIT_ID]
        assert client.get_product(PRODUCT_ID)["name"] == "Pro"
        assert client.get_benefit(BENEFIT_ID)["description"] == "Support"
        seen = set()
        for call in mock.calls:
            op = contract.validate_request(
                call.request.method, call.request.url, call.request.body, version=version
            )
            seen.add(op)
            assert call.request.headers["Polar-Version"] == version
            contract.validate_response(
                op, 200, "application/json", call.response.content, version=version
            )
    assert seen == {"products:list", "benefits:list", "products:get", "benefits:get"}


def test_catalogue_errors_keep_their_meaning():
    from polar_sync.exceptions import (
        PolarEndpointNotAvailableError,
        PolarNotFoundError,
        PolarPermissionError,
        PolarResponseError,
    )

    product, _benefit = _catalog_answers()
    client = PolarClient(access_token=TOKEN, server=BASE_URL, api_version="2026-04")
    url = f"{BASE_URL}/v1/products/{PRODUCT_ID}"
    with responses.RequestsMock() as mock:
        mock.get(url, status=404, json={"detail": "Not Found"})
        with pytest.raises(PolarEndpointNotAvailableError):  # a route, not a product, missing
            client.get_product(PRODUCT_ID)
        mock.replace(responses.GET, url, status=404, json=load_fixture("error_404"))
        with pytest.raises(PolarNotFoundError):
            client.get_product(PRODUCT_ID)
        mock.get(f"{BASE_URL}/v1/benefits/", status=403, json={"error": "NotPermitted",
                                                                "detail": "no"})  # fmt: skip
        with pytest.raises(PolarPermissionError):
            client.list_benefits()
        mock.replace(responses.GET, url, json={**product, "id": BENEFIT_ID})
        with pytest.raises(PolarResponseError, match="asked for"):
            client.get_product(PRODUCT_ID)
