"""Fault injection, outages and concurrency of the local Polar server."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from polar_sync.testing import Faults, LocalPolarServer


@pytest.fixture
def polar() -> Iterator[LocalPolarServer]:
    with LocalPolarServer(api_version="2025-10", customers=20, seed=1) as server:
        yield server


def statuses(polar: LocalPolarServer, count: int) -> list[int]:
    return [polar.request("GET", "/v1/customers/").status for _ in range(count)]


def test_fail_rate_one_fails_everything_until_cleared(polar: LocalPolarServer) -> None:
    polar.faults.fail_rate = 1.0
    found = statuses(polar, 30)
    assert set(found) <= {500, 502, 503}
    assert len(set(found)) > 1
    response = polar.request("GET", "/v1/customers/")
    assert isinstance(response.json()["detail"], str)
    polar.faults.fail_statuses = (503,)
    assert set(statuses(polar, 5)) == {503}
    polar.faults.fail_rate = 0.0
    assert set(statuses(polar, 3)) == {200}


def test_failures_hit_writes_before_they_happen(polar: LocalPolarServer) -> None:
    polar.faults.fail_rate = 1.0
    response = polar.request("POST", "/v1/customers/", json={"email": "x@example.com"})
    assert response.status >= 500
    assert len(polar.store) == 20


def test_fail_rate_is_deterministic_for_a_seed() -> None:
    runs = []
    for _ in range(2):
        with LocalPolarServer(api_version="2025-10", seed=42, fail_rate=0.5) as polar:
            runs.append(statuses(polar, 40))
    assert runs[0] == runs[1]
    assert 200 in runs[0] and any(status >= 500 for status in runs[0])


def test_rate_limit_answers_429_with_retry_after() -> None:
    with LocalPolarServer(api_version="2025-10", rate_limit=3) as polar:
        assert statuses(polar, 3) == [200, 200, 200]
        response = polar.request("GET", "/v1/customers/")
        assert response.status == 429
        retry_after = response.headers["retry-after"]
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60
        assert "Rate limit" in response.json()["detail"]
        assert polar.store.status_counts[429] == 1
        polar.faults.rate_limit = None
        assert statuses(polar, 1) == [200]


def test_rate_limit_is_shared_across_connections() -> None:
    with LocalPolarServer(api_version="2025-10", rate_limit=4) as polar:
        connections = [http.client.HTTPConnection("127.0.0.1", polar.port) for _ in range(2)]
        found = []
        for i in range(6):
            connection = connections[i % 2]
            connection.request("GET", "/v1/customers/", headers={
                "Authorization": f"Bearer {polar.token}"})  # fmt: skip
            response = connection.getresponse()
            response.read()
            found.append(response.status)
        assert found == [200, 200, 200, 200, 429, 429]


def test_rate_limit_window_slides() -> None:
    faults = Faults(rate_limit=2, rate_limit_window=60)
    assert faults.admit(now=0.0) is None
    assert faults.admit(now=10.0) is None
    assert faults.admit(now=20.0) == 40  # the first request leaves the window at 60
    assert faults.admit(now=59.5) == 1  # rounded up, at least one second
    assert faults.admit(now=60.0) is None
    assert faults.admit(now=61.0) == 9
    faults.reset_rate_limit()
    assert faults.admit(now=61.0) is None


def test_rate_limit_can_be_set_at_runtime(polar: LocalPolarServer) -> None:
    polar.faults.rate_limit = 1
    assert statuses(polar, 3) == [200, 429, 429]
    polar.faults.reset_rate_limit()
    assert statuses(polar, 1) == [200]


def test_dropped_connections(polar: LocalPolarServer) -> None:
    polar.faults.drop_rate = 1.0
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        polar.request("GET", "/v1/customers/")
    assert polar.store.requests[-1].status == 0
    polar.faults.drop_rate = 0.0
    assert statuses(polar, 1) == [200]


def test_malformed_json(polar: LocalPolarServer) -> None:
    polar.faults.malformed_rate = 1.0
    response = polar.request("GET", "/v1/customers/")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert response.body.startswith(b'{"items":[')
    with pytest.raises(json.JSONDecodeError):
        response.json()
    # Errors and CSV are left intact.
    missing = polar.request("GET", "/v1/customers/992fae2a-2a17-4b7a-8d9e-e287cf90131b")
    assert missing.json()["error"] == "ResourceNotFound"
    assert polar.request("GET", "/v1/customers/export").body.startswith(b"ID,External ID,")


def test_latency_delays_every_answer(polar: LocalPolarServer) -> None:
    waited: list[float] = []
    polar.sleep = waited.append  # type: ignore[method-assign]
    statuses(polar, 2)
    assert waited == []
    polar.faults.latency = 0.25
    statuses(polar, 2)
    assert waited == [0.25, 0.25]


def test_faults_at_construction() -> None:
    polar = LocalPolarServer(api_version="2025-10", rate_limit=500, fail_rate=0.05, latency=0.1,
                             drop_rate=0.01, malformed_rate=0.02, balance_route=False,
                             fail_statuses=(502,))  # fmt: skip
    faults = polar.faults
    assert (faults.rate_limit, faults.fail_rate, faults.latency) == (500, 0.05, 0.1)
    assert (faults.drop_rate, faults.malformed_rate, faults.balance_route) == (0.01, 0.02, False)
    assert faults.fail_statuses == (502,)
    faults.clear()
    assert (faults.rate_limit, faults.fail_rate, faults.balance_route) == (None, 0.0, True)


def test_stop_then_start_on_the_same_port(polar: LocalPolarServer) -> None:
    port = polar.port
    keep_alive = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {polar.token}"}
    keep_alive.request("GET", "/v1/customers/", headers=headers)
    keep_alive.getresponse().read()
    created = polar.request("POST", "/v1/customers/", json={"email": "o@example.com"}).json()

    polar.stop()
    assert not polar.running
    with pytest.raises(ConnectionRefusedError):
        polar.request("GET", "/v1/customers/")
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        keep_alive.request("GET", "/v1/customers/", headers=headers)
        keep_alive.getresponse()

    polar.start()
    assert polar.port == port
    response = polar.request("GET", f"/v1/customers/{created['id']}")
    assert response.status == 200
    assert polar.request("GET", "/v1/customers/").json()["pagination"]["total_count"] == 21
    polar.stop()
    polar.stop()  # idempotent


def test_keep_alive_serves_many_requests_on_one_connection(polar: LocalPolarServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", polar.port)
    headers = {"Authorization": f"Bearer {polar.token}"}
    for page in (1, 2, 3):
        connection.request("GET", f"/v1/customers/?page={page}&limit=5", headers=headers)
        response = connection.getresponse()
        assert len(json.loads(response.read())["items"]) == 5
    connection.request("POST", "/v1/customers/", body=b'{"email": "k@example.com"}',
                       headers=headers)  # fmt: skip
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["email"]) == (201, "k@example.com")
    connection.request("DELETE", "/v1/customers/external/usr_0000001", headers=headers)
    response = connection.getresponse()
    assert (response.status, response.read()) == (204, b"")
    connection.request("GET", "/v1/customers/?limit=1", headers=headers)
    response = connection.getresponse()
    assert json.loads(response.read())["pagination"]["total_count"] == 20
    connection.close()


def test_concurrent_creates_are_all_kept() -> None:
    with LocalPolarServer(api_version="2025-10") as polar:
        results: list[int] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for i in range(15):
                body = {"email": f"w{n}-{i}@example.com", "external_id": f"w{n}-{i}"}
                status = polar.request("POST", "/v1/customers/", json=body).status
                with lock:
                    results.append(status)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [201] * 120
        listed = polar.request("GET", "/v1/customers/", params={"limit": 100, "page": 2}).json()
        assert listed["pagination"]["total_count"] == 120
        customers = polar.store.customers()
        assert len({c["id"] for c in customers}) == len({c["email"] for c in customers}) == 120


def test_concurrent_duplicates_only_one_wins() -> None:
    with LocalPolarServer(api_version="2025-10") as polar:
        results: list[int] = []
        barrier = threading.Barrier(10)

        def worker() -> None:
            barrier.wait()
            body = {"email": "same@example.com"}
            results.append(polar.request("POST", "/v1/customers/", json=body).status)

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [201] + [422] * 9
        assert len(polar.store) == 1
