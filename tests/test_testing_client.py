"""The project's PolarClient works against the local Polar server unchanged (end to end),
and the pytest plugin's fixtures work."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator

import pytest

from polar_sync.testing import LocalPolarServer

client_module = pytest.importorskip("polar_sync.client")
exceptions = pytest.importorskip("polar_sync.exceptions")
PolarClient = client_module.PolarClient

pytestmark = pytest.mark.e2e

MakeClient = Callable[..., "client_module.PolarClient"]


@pytest.fixture
def make_client(sleeps: list[float]) -> Iterator[MakeClient]:
    made = []

    def make(server: LocalPolarServer, **options: object) -> client_module.PolarClient:
        options.setdefault("access_token", server.token)
        options.setdefault("max_retries", 0)
        client = PolarClient(server=server.url, timeout=5.0, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.mark.parametrize("api_version", [None, "2026-04", "2026-10", "2027-01"])
def test_every_operation(
    polar_server_factory: Callable[..., LocalPolarServer],
    make_client: MakeClient,
    api_version: str | None,
) -> None:
    """At each version polar_sync speaks, against a server of it (None: 2025-10)."""
    polar_server = polar_server_factory(api_version=api_version or "2025-10")
    polar_server.store.seed(250, seed=3)
    client = make_client(polar_server, api_version=api_version)
    walked = list(client.iter_customers(sorting=["created_at"]))
    assert len(walked) == len({c["id"] for c in walked}) == 250
    assert polar_server.store.request_counts["customers:list"] == 3  # pages of 100

    created = client.create({"email": "ada@example.com", "external_id": "ada",
                             "metadata": {"plan": "pro"}})  # fmt: skip
    assert client.get(created["id"]) == created
    assert client.get_external("ada")["id"] == created["id"]
    assert client.update(created["id"], {"name": "Ada"})["name"] == "Ada"
    assert client.update_external("ada", {"name": "Ada L."})["name"] == "Ada L."
    page = client.list(email="ADA@example.com", metadata={"plan": "pro"}, limit=5)
    assert [c["id"] for c in page["items"]] == [created["id"]]
    assert client.list(query="ada", organization_id=polar_server.organization_id)["items"]

    polar_server.store.start_subscription(created["id"], amount=2900)
    polar_server.store.set_balance(created["id"], 700)
    assert client.get_state(created["id"])["active_subscriptions"][0]["amount"] == 2900
    assert client.get_state_external("ada")["id"] == created["id"]
    if api_version is None:
        assert client.get_balance(created["id"]) == {"balance": 700, "currency": "USD"}
    else:
        with pytest.raises(exceptions.PolarEndpointNotAvailableError):
            client.get_balance(created["id"])
        assert client.get_state(created["id"])["type"] == "individual"
    assert client.served_api_version == (api_version or "2025-10")
    rows = list(csv.reader(io.StringIO(client.export())))
    assert len(rows) == 252 and rows[-1][0] == created["id"]

    client.delete_external("ada")
    with pytest.raises(exceptions.PolarNotFoundError):
        client.get(created["id"])
    other = client.create({"email": "bob@example.com"})
    client.delete(other["id"])
    with pytest.raises(exceptions.PolarNotFoundError):
        client.get_state(other["id"])


def test_errors_are_translated(polar_server: LocalPolarServer, make_client: MakeClient) -> None:
    client = make_client(polar_server)
    client.create({"email": "dup@example.com"})
    with pytest.raises(exceptions.PolarValidationError) as caught:
        client.create({"email": "DUP@example.com"})
    assert caught.value.has_error_on("email")
    with pytest.raises(exceptions.PolarAuthenticationError):
        make_client(polar_server, access_token="polar_oat_wrong").list()
    customer = polar_server.store.add_customer()
    polar_server.faults.balance_route = False
    with pytest.raises(exceptions.PolarEndpointNotAvailableError):
        client.get_balance(customer["id"])
    polar_server.faults.fail_rate = 1.0
    with pytest.raises(exceptions.PolarServerError):
        client.list()
    polar_server.faults.fail_rate = 0.0
    polar_server.faults.malformed_rate = 1.0
    with pytest.raises(exceptions.PolarResponseError):
        client.get(customer["id"])
    polar_server.faults.malformed_rate = 0.0
    polar_server.faults.drop_rate = 1.0
    with pytest.raises(exceptions.PolarNetworkError):
        client.list()


def test_rate_limit_reaches_the_client(
    polar_server_factory: Callable[..., LocalPolarServer],
    make_client: MakeClient,
    sleeps: list[float],
) -> None:
    polar = polar_server_factory(rate_limit=1)
    client = make_client(polar, max_retries=2)
    client.list()
    with pytest.raises(exceptions.PolarRateLimitError) as caught:
        client.list()
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 60
    assert len(sleeps) == 2  # it waited as told, twice, before giving up
    assert polar.store.status_counts[429] == 3


def test_outage_then_recovery(polar_server: LocalPolarServer, make_client: MakeClient) -> None:
    client = make_client(polar_server)
    customer = client.create({"email": "o@example.com"})
    polar_server.stop()
    with pytest.raises(exceptions.PolarNetworkError):
        client.get(customer["id"])
    polar_server.start()
    assert client.get(customer["id"]) == customer


def test_retries_get_through_flaky_servers(
    polar_server_factory: Callable[..., LocalPolarServer], make_client: MakeClient
) -> None:
    polar = polar_server_factory(customers=300, seed=4, fail_rate=0.3, malformed_rate=0.0)
    client = make_client(polar, max_retries=8)
    assert len({c["id"] for c in client.iter_customers(sorting=["created_at"])}) == 300
    assert any(status >= 500 for status in polar.store.status_counts)


def test_factory_servers_are_independent(
    polar_server_factory: Callable[..., LocalPolarServer],
) -> None:
    first = polar_server_factory(customers=5)
    second = polar_server_factory(token="polar_oat_given", organization_id=None)
    assert first.port != second.port and second.token == "polar_oat_given"
    assert len(first.store) == 5 and len(second.store) == 0
    assert first.running and second.running
