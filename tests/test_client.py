"""PolarClient against ``responses``: each operation, each error class, retries."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from django.test import override_settings

from polar_sync import __version__
from polar_sync.client import PolarClient, get_client
from polar_sync.exceptions import (
    PolarAuthenticationError,
    PolarConfigurationError,
    PolarEndpointNotAvailableError,
    PolarError,
    PolarNetworkError,
    PolarNotFoundError,
    PolarPermanentError,
    PolarPermissionError,
    PolarRateLimitError,
    PolarResponseError,
    PolarServerError,
    PolarTimeoutError,
    PolarTransientError,
    PolarValidationError,
)
from tests import contract
from tests.conftest import BASE_URL, TOKEN, load_fixture

CID = "992fae2a-2a17-4b7a-8d9e-e287cf90131b"
CUSTOMERS = f"{BASE_URL}/v1/customers/"


def page(items, total, max_page):
    return {"items": items, "pagination": {"total_count": total, "max_page": max_page}}


def query_of(call) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url).query)


# --------------------------------------------------------------- operations


def test_list_sends_every_filter_in_the_contracts_style(client, polar_http):
    polar_http.get(CUSTOMERS, json=page([load_fixture("customer")], 1, 1))
    result = client.list(
        organization_id=[
            "1dbfc517-0bbf-4301-9ba8-555ca42b9737",
            "2dbfc517-0bbf-4301-9ba8-555ca42b9737",
        ],
        email="ada@example.com",
        query="ada",
        page=2,
        limit=50,
        sorting=["-created_at", "email"],
        metadata={"plan": "pro", "beta": True, "tier": ["a", "b"]},
    )
    assert result["items"][0]["id"] == CID
    assert query_of(polar_http.calls[0]) == [
        ("organization_id", "1dbfc517-0bbf-4301-9ba8-555ca42b9737"),
        ("organization_id", "2dbfc517-0bbf-4301-9ba8-555ca42b9737"),
        ("email", "ada@example.com"),
        ("query", "ada"),
        ("page", "2"),
        ("limit", "50"),
        ("sorting", "-created_at"),
        ("sorting", "email"),
        ("metadata[plan]", "pro"),
        ("metadata[beta]", "true"),
        ("metadata[tier]", "a"),
        ("metadata[tier]", "b"),
    ]


def test_iter_customers_walks_every_page_until_max_page(client, polar_http):
    a, b, c = (
        dict(load_fixture("customer"), id=f"00000000-0000-4000-8000-00000000000{i}")
        for i in range(3)
    )
    polar_http.get(CUSTOMERS, json=page([a, b], 3, 2))
    polar_http.get(CUSTOMERS, json=page([c], 3, 2))
    ids = [x["id"] for x in client.iter_customers(sorting="created_at")]
    assert ids == [a["id"], b["id"], c["id"]]
    assert [dict(query_of(call))["page"] for call in polar_http.calls] == ["1", "2"]
    assert all(dict(query_of(call))["limit"] == "100" for call in polar_http.calls)


@pytest.mark.parametrize("prefetch", [False, True])
def test_iter_pages_yields_each_page_transformed_in_the_fetching_thread(polar_http, prefetch):
    import threading

    hooks: list[str] = []
    client = PolarClient(
        access_token=TOKEN,
        server=BASE_URL,
        before_request=lambda: hooks.append(threading.current_thread().name),
    )
    items = [
        dict(load_fixture("customer"), id=f"00000000-0000-4000-8000-00000000000{i}")
        for i in range(3)
    ]
    polar_http.get(CUSTOMERS, json=page(items[:2], 3, 2))
    polar_http.get(CUSTOMERS, json=page(items[2:], 3, 2))

    def transform(result):
        return threading.current_thread().name, [c["id"] for c in result["items"]]

    out = list(client.iter_pages(prefetch=prefetch, transform=transform))
    assert [ids for _thread, ids in out] == [[i["id"] for i in items[:2]], [items[2]["id"]]]
    caller = threading.current_thread().name
    threads = {thread for thread, _ids in out}
    if prefetch:
        assert threads and all(t.startswith("polar-prefetch") for t in threads)
    else:
        assert threads == {caller}
    assert hooks == [caller, caller]  # once per page, always in the caller's thread


def test_iter_customers_stops_on_an_empty_page(client, polar_http):
    polar_http.get(CUSTOMERS, json=page([], 0, 0))
    assert list(client.iter_customers()) == []
    assert len(polar_http.calls) == 1


def test_create_posts_the_body_and_returns_the_customer(client, polar_http):
    polar_http.post(CUSTOMERS, json=load_fixture("customer"), status=201)
    body = {"email": "ada@example.com", "name": "Ada Lovelace", "external_id": "usr_1337"}
    assert client.create(body)["id"] == CID
    assert json.loads(polar_http.calls[0].request.body) == body


def test_export_returns_the_csv_text(client, polar_http):
    csv_text = ",".join(contract.EXPORT_HEADER) + "\r\n"
    polar_http.get(f"{BASE_URL}/v1/customers/export", body=csv_text, content_type="text/csv")
    assert client.export(organization_id="1dbfc517-0bbf-4301-9ba8-555ca42b9737") == csv_text
    assert query_of(polar_http.calls[0]) == [
        ("organization_id", "1dbfc517-0bbf-4301-9ba8-555ca42b9737")
    ]


def test_export_asks_for_csv_not_json(client, polar_http):
    # A strict server answers 406 to a CSV route asked for JSON only.
    polar_http.get(f"{BASE_URL}/v1/customers/export", body="ID\r\n", content_type="text/csv")
    client.export()
    accept = polar_http.calls[0].request.headers["Accept"]
    assert accept.split(",")[0].strip() == "text/csv"
    assert "application/json" in accept  # error answers are JSON


@pytest.mark.parametrize(
    ("method_name", "http", "path", "fixture", "args"),
    [
        ("get", "GET", f"/v1/customers/{CID}", "customer", (CID,)),
        ("update", "PATCH", f"/v1/customers/{CID}", "customer", (CID, {"name": "x"})),
        ("get_state", "GET", f"/v1/customers/{CID}/state", "state", (CID,)),
        ("get_external", "GET", "/v1/customers/external/usr_1337", "customer", ("usr_1337",)),
        (
            "update_external",
            "PATCH",
            "/v1/customers/external/usr_1337",
            "customer",
            ("usr_1337", {"name": "x"}),
        ),
        (
            "get_state_external",
            "GET",
            "/v1/customers/external/usr_1337/state",
            "state",
            ("usr_1337",),
        ),
    ],
)
def test_an_answer_about_another_customer_is_refused(
    client, polar_http, method_name, http, path, fixture, args
):
    other = {
        **load_fixture(fixture),
        "id": "0b6b2f0e-0000-4000-8000-000000000001",
        "external_id": "usr_other",
    }
    polar_http.add(http, f"{BASE_URL}{path}", json=other)
    with pytest.raises(PolarResponseError, match="asked for"):
        getattr(client, method_name)(*args)


def test_a_customer_id_in_another_case_is_the_same_customer(client, polar_http):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID.upper()}", json=load_fixture("customer"))
    assert client.get(CID.upper())["id"] == CID


def test_export_stream_yields_chunks(client, polar_http):
    polar_http.get(f"{BASE_URL}/v1/customers/export", body="a" * 10, content_type="text/csv")
    assert b"".join(client.export_stream(chunk_size=3)) == b"a" * 10


@pytest.mark.parametrize(
    ("method_name", "http", "path", "fixture"),
    [
        ("get", "GET", f"/v1/customers/{CID}", "customer"),
        ("get_state", "GET", f"/v1/customers/{CID}/state", "state"),
        ("get_balance", "GET", f"/v1/customers/{CID}/balance", "balance"),
        ("get_external", "GET", "/v1/customers/external/usr_1337", "customer"),
        ("get_state_external", "GET", "/v1/customers/external/usr_1337/state", "state"),
    ],
)
def test_reads(client, client_2025, polar_http, method_name, http, path, fixture):
    if method_name == "get_balance":
        client = client_2025  # /balance: only the 2025-10 era
    polar_http.add(http, f"{BASE_URL}{path}", json=load_fixture(fixture))
    arg = "usr_1337" if "external" in path else CID
    assert getattr(client, method_name)(arg) == load_fixture(fixture)
    assert polar_http.calls[0].request.method == http


@pytest.mark.parametrize(
    ("method_name", "path", "arg"),
    [
        ("update", f"/v1/customers/{CID}", CID),
        ("update_external", "/v1/customers/external/usr_1337", "usr_1337"),
    ],
)
def test_updates_patch_the_body(client, polar_http, method_name, path, arg):
    polar_http.patch(f"{BASE_URL}{path}", json=load_fixture("customer"))
    result = getattr(client, method_name)(arg, {"name": "Ada King"})
    assert result["id"] == CID
    assert json.loads(polar_http.calls[0].request.body) == {"name": "Ada King"}


@pytest.mark.parametrize(
    ("method_name", "path", "arg"),
    [
        ("delete", f"/v1/customers/{CID}", CID),
        ("delete_external", "/v1/customers/external/usr_1337", "usr_1337"),
    ],
)
def test_deletes(client, polar_http, method_name, path, arg):
    polar_http.delete(f"{BASE_URL}{path}", status=204)
    assert getattr(client, method_name)(arg) is None
    assert polar_http.calls[0].request.method == "DELETE"


def test_external_ids_are_percent_encoded_in_the_path(client, polar_http):
    customer = {**load_fixture("customer"), "external_id": "a/b c"}
    polar_http.get(f"{BASE_URL}/v1/customers/external/a%2Fb%20c", json=customer)
    client.get_external("a/b c")
    assert urlsplit(polar_http.calls[0].request.url).path == "/v1/customers/external/a%2Fb%20c"


def test_headers_carry_auth_user_agent_and_optional_version(polar_http):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json=load_fixture("customer"))
    PolarClient(access_token=TOKEN, server=BASE_URL, api_version=None).get(CID)
    PolarClient(access_token=TOKEN, server=BASE_URL, api_version="2026-10").get(CID)
    PolarClient(access_token=TOKEN, server=BASE_URL).get(CID)
    first, second, third = (c.request.headers for c in polar_http.calls)
    assert first["Authorization"] == f"Bearer {TOKEN}"
    assert f"polar_sync/{__version__}" in first["User-Agent"]
    assert "Polar-Version" not in first  # None: a server of the 2025-10 era
    assert second["Polar-Version"] == "2026-10"
    assert third["Polar-Version"] == "2026-04"  # the default, pinned


def test_a_configured_organization_is_the_default_filter_and_create_organization(polar_http):
    org = "1dbfc517-0bbf-4301-9ba8-555ca42b9737"
    polar_http.get(CUSTOMERS, json=page([], 0, 0))
    polar_http.post(CUSTOMERS, json=load_fixture("customer"), status=201)
    with override_settings(
        POLAR_SYNC={"ACCESS_TOKEN": TOKEN, "SERVER": BASE_URL, "ORGANIZATION_ID": org}
    ):
        c = PolarClient.from_settings()
    c.list()
    c.create({"email": "ada@example.com"})
    assert query_of(polar_http.calls[0]) == [("organization_id", org)]
    assert json.loads(polar_http.calls[1].request.body)["organization_id"] == org


def test_unknown_and_2026_fields_are_kept(client, polar_http):
    team = load_fixture("customer_2026_team")
    polar_http.get(f"{BASE_URL}/v1/customers/{team['id']}", json=team)
    result = client.get(team["id"])
    assert (
        result["type"] == "team"
        and result["billing_name"] == "Acme Corp."
        and result["email"] is None
    )


def test_servers_by_name():
    assert (
        PolarClient(access_token=TOKEN, server="sandbox").base_url == "https://sandbox-api.polar.sh"
    )
    assert PolarClient(access_token=TOKEN).base_url == "https://api.polar.sh"
    with pytest.raises(PolarConfigurationError):
        PolarClient(access_token=TOKEN, server="staging")
    with pytest.raises(PolarConfigurationError):
        PolarClient(access_token="", server="sandbox")


# ------------------------------------------------------------------- errors


def test_404_with_polars_body_is_not_found_with_detail(client, polar_http):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json=load_fixture("error_404"), status=404)
    with pytest.raises(PolarNotFoundError) as info:
        client.get(CID)
    assert info.value.detail == "Not found"
    assert info.value.operation == "customers:get"
    assert len(polar_http.calls) == 1


def test_404_without_error_field_is_endpoint_not_available(client_2025, polar_http):
    polar_http.get(
        f"{BASE_URL}/v1/customers/{CID}/balance", json={"detail": "Not Found"}, status=404
    )
    with pytest.raises(PolarEndpointNotAvailableError, match="2025-10 era"):
        client_2025.get_balance(CID)


def test_a_2026_client_never_asks_for_the_balance(client, polar_http):
    with pytest.raises(PolarEndpointNotAvailableError, match="2026-04 has no /balance"):
        client.get_balance(CID)
    assert not polar_http.calls


def test_422_is_validation_error_with_the_detail_list(client, polar_http):
    polar_http.post(CUSTOMERS, json=load_fixture("error_422_email"), status=422)
    with pytest.raises(PolarValidationError) as info:
        client.create({"email": "ada@example.com"})
    assert info.value.errors == load_fixture("error_422_email")["detail"]
    assert info.value.has_error_on("email")
    assert "already exists" in str(info.value)
    assert len(polar_http.calls) == 1


@pytest.mark.parametrize(
    ("status", "exc"), [(401, PolarAuthenticationError), (403, PolarPermissionError)]
)
def test_auth_errors_are_permanent_and_not_retried(client, polar_http, status, exc):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json={"detail": "nope"}, status=status)
    with pytest.raises(exc) as info:
        client.get(CID)
    assert isinstance(info.value, PolarPermanentError)
    assert len(polar_http.calls) == 1


def test_5xx_is_retried_then_raised_as_server_error(client, polar_http, sleeps):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", status=503, json={"detail": "down"})
    with pytest.raises(PolarServerError) as info:
        client.get(CID)
    assert isinstance(info.value, PolarTransientError)
    assert info.value.status_code == 503
    assert len(polar_http.calls) == 4  # one try and MAX_RETRIES=3 retries
    assert len(sleeps) == 3


def test_network_error_and_timeout(client, polar_http, sleeps):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", body=requests.ConnectionError("refused"))
    with pytest.raises(PolarNetworkError):
        client.get(CID)
    polar_http.replace("GET", f"{BASE_URL}/v1/customers/{CID}", body=requests.ReadTimeout("slow"))
    with pytest.raises(PolarTimeoutError):
        client.get(CID)


def test_no_bare_requests_exception_leaves_the_client(client, polar_http, sleeps):
    polar_http.get(
        f"{BASE_URL}/v1/customers/{CID}", body=requests.exceptions.ChunkedEncodingError("x")
    )
    with pytest.raises(PolarError):
        client.get(CID)


def test_malformed_json_names_the_operation(client, polar_http):
    polar_http.get(
        f"{BASE_URL}/v1/customers/{CID}/state",
        body='{"id": "abc", "active_subs',
        content_type="application/json",
    )
    with pytest.raises(PolarResponseError) as info:
        client.get_state(CID)
    assert "customers:get_state" in str(info.value) and "not valid JSON" in str(info.value)


@pytest.mark.parametrize(
    ("method_name", "url", "body", "expected"),
    [
        ("get", f"/v1/customers/{CID}", [1, 2], "expected a customer object"),
        ("get_balance", f"/v1/customers/{CID}/balance", {"balance": "12"}, "integer cents"),
        ("list", "/v1/customers/", {"items": "nope"}, "'items' list"),
        (
            "get_state",
            f"/v1/customers/{CID}/state",
            {"id": CID, "granted_benefits": {}},
            "'granted_benefits' is not a list",
        ),
    ],
)
def test_wrong_shapes_raise_a_clear_error(
    client, client_2025, polar_http, method_name, url, body, expected
):
    if method_name == "get_balance":
        client = client_2025
    polar_http.get(f"{BASE_URL}{url}", json=body)
    with pytest.raises(PolarResponseError) as info:
        getattr(client, method_name)(*([] if method_name == "list" else [CID]))
    assert expected in str(info.value)


# ------------------------------------------------------------------ retries


def test_retry_then_success_uses_exponential_backoff_with_jitter(client, polar_http, sleeps):
    url = f"{BASE_URL}/v1/customers/{CID}"
    polar_http.get(url, status=502)
    polar_http.get(url, status=503)
    polar_http.get(url, status=500)
    polar_http.get(url, json=load_fixture("customer"))
    assert client.get(CID)["id"] == CID
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):
        assert 0 <= delay <= client.backoff_base * 2**attempt


def test_retry_after_is_honoured_on_the_sleep_given(polar_http):
    slept: list[float] = []
    c = PolarClient(access_token=TOKEN, server=BASE_URL, sleep=slept.append)
    url = f"{BASE_URL}/v1/customers/{CID}"
    polar_http.get(url, status=429, headers={"Retry-After": "7"}, json={"detail": "slow down"})
    polar_http.get(url, json=load_fixture("customer"))
    assert c.get(CID)["id"] == CID
    assert slept == [7.0]


def test_rate_limit_error_carries_retry_after_when_retries_run_out(polar_http, sleeps):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", status=429, headers={"Retry-After": "3"})
    c = PolarClient(access_token=TOKEN, server=BASE_URL, max_retries=0)
    with pytest.raises(PolarRateLimitError) as info:
        c.get(CID)
    assert info.value.retry_after == 3.0
    assert sleeps == []


def test_backoff_is_capped(polar_http, sleeps):
    c = PolarClient(
        access_token=TOKEN, server=BASE_URL, max_retries=6, backoff_base=1, backoff_max=2
    )
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", status=500)
    with pytest.raises(PolarServerError):
        c.get(CID)
    assert len(sleeps) == 6 and max(sleeps) <= 2


def test_create_after_ambiguous_failure_finds_by_external_id(client, polar_http, sleeps):
    polar_http.post(CUSTOMERS, body=requests.ConnectionError("reset after send"))
    polar_http.get(f"{BASE_URL}/v1/customers/external/usr_1337", json=load_fixture("customer"))
    result = client.create({"email": "ada@example.com", "external_id": "usr_1337"})
    assert result["id"] == CID
    assert [c.request.method for c in polar_http.calls] == ["POST", "GET"]


def test_create_retries_when_lookup_finds_nothing(client, polar_http, sleeps):
    polar_http.post(CUSTOMERS, status=502)
    polar_http.post(CUSTOMERS, json=load_fixture("customer"), status=201)
    polar_http.get(
        f"{BASE_URL}/v1/customers/external/usr_1337", json=load_fixture("error_404"), status=404
    )
    result = client.create({"email": "ada@example.com", "external_id": "usr_1337"})
    assert result["id"] == CID
    assert [c.request.method for c in polar_http.calls] == ["POST", "GET", "POST"]


def test_create_without_external_id_looks_up_by_email(client, polar_http, sleeps):
    polar_http.post(CUSTOMERS, body=requests.ReadTimeout("slow"))
    polar_http.get(CUSTOMERS, json=page([load_fixture("customer")], 1, 1))
    assert client.create({"email": "ada@example.com"})["id"] == CID
    assert ("email", "ada@example.com") in query_of(polar_http.calls[1])
    assert sum(c.request.method == "POST" for c in polar_http.calls) == 1


def test_create_on_429_retries_without_lookup(client, polar_http, sleeps):
    polar_http.post(CUSTOMERS, status=429, headers={"Retry-After": "1"})
    polar_http.post(CUSTOMERS, json=load_fixture("customer"), status=201)
    assert client.create({"email": "ada@example.com"})["id"] == CID
    assert [c.request.method for c in polar_http.calls] == ["POST", "POST"]
    assert sleeps == [1.0]


def test_create_gives_up_after_max_retries(client, polar_http, sleeps):
    polar_http.post(CUSTOMERS, status=503)
    polar_http.get(
        f"{BASE_URL}/v1/customers/external/x1", json=load_fixture("error_404"), status=404
    )
    with pytest.raises(PolarServerError):
        client.create({"email": "x@example.com", "external_id": "x1"})
    assert sum(c.request.method == "POST" for c in polar_http.calls) == 4


# ------------------------------------------------------------------ secrets


def test_token_never_in_logs_reprs_or_errors(client, client_2025, polar_http, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json={"detail": "invalid token"}, status=401)
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}/state", status=500)
    # A transport error whose text happens to contain the token.
    polar_http.get(
        f"{BASE_URL}/v1/customers/{CID}/balance", body=requests.ConnectionError(f"boom {TOKEN}")
    )
    errors = []
    for call in (client.get, client.get_state, client_2025.get_balance):
        with pytest.raises(PolarError) as info:
            call(CID)
        errors.append(info.value)
    texts = [f"{e} {e!r} {e.__cause__ or ''}" for e in errors]
    texts += [r.getMessage() for r in caplog.records]
    texts.append(repr(client))
    assert caplog.records, "the client should log its requests"
    assert not [t for t in texts if TOKEN in t]


def test_401_message_does_not_leak_token_even_if_echoed(client, polar_http):
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json={"detail": "bad"}, status=401)
    with pytest.raises(PolarAuthenticationError) as info:
        client.get(CID)
    assert TOKEN not in str(info.value)


# ----------------------------------------------------------------- settings


def test_from_settings_reads_settings_at_call_time(polar_http):
    with override_settings(
        POLAR_SYNC={"ACCESS_TOKEN": "tok_a", "SERVER": "sandbox", "TIMEOUT": 3, "MAX_RETRIES": 1}
    ):
        c = PolarClient.from_settings()
        assert (c.base_url, c.timeout, c.max_retries) == ("https://sandbox-api.polar.sh", 3.0, 1)
    with override_settings(
        POLAR_SYNC={"ACCESS_TOKEN": "tok_b", "SERVER": BASE_URL, "API_VERSION": "2026-10"}
    ):
        polar_http.get(f"{BASE_URL}/v1/customers/{CID}", json=load_fixture("customer"))
        get_client().get(CID)
        assert polar_http.calls[0].request.headers["Authorization"] == "Bearer tok_b"
        assert polar_http.calls[0].request.headers["Polar-Version"] == "2026-10"
        assert get_client() is get_client()


def test_from_settings_without_token_is_a_configuration_error():
    with override_settings(POLAR_SYNC={"SERVER": "sandbox"}):
        with pytest.raises(PolarConfigurationError) as info:
            PolarClient.from_settings()
    assert "ACCESS_TOKEN" in str(info.value)


def test_unknown_setting_is_rejected():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "x", "PAGESIZE": 10}):
        with pytest.raises(PolarConfigurationError, match="PAGESIZE"):
            PolarClient.from_settings()


def test_on_wait_is_called_before_each_request_and_through_a_long_retry_after(polar_http, sleeps):
    calls: list[int] = []
    c = PolarClient(access_token=TOKEN, server=BASE_URL, on_wait=lambda: calls.append(len(sleeps)))
    url = f"{BASE_URL}/v1/customers/{CID}"
    polar_http.get(url, status=429, headers={"Retry-After": "12"})
    polar_http.get(url, json=load_fixture("customer"))

    assert c.get(CID)["id"] == CID
    # Slept 12 seconds in slices of 5, showing life before each slice and request.
    assert sleeps == [5.0, 5.0, 2.0]
    assert calls == [0, 0, 1, 2, 3]


def test_an_on_wait_that_raises_stops_the_retries(polar_http, sleeps):
    class Stop(Exception):
        pass

    calls: list[int] = []

    def on_wait() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    c = PolarClient(access_token=TOKEN, server=BASE_URL, on_wait=on_wait, max_retries=5)
    polar_http.get(f"{BASE_URL}/v1/customers/{CID}", status=429, headers={"Retry-After": "60"})
    with pytest.raises(Stop):
        c.get(CID)
    assert len(polar_http.calls) == 1 and sum(sleeps) == 5.0


def test_on_wait_is_called_in_the_callers_thread_while_a_prefetched_page_is_slow(polar_http):
    import threading

    caller = threading.current_thread().name
    waited = threading.Event()
    calls: list[str] = []

    def on_wait() -> None:
        calls.append(threading.current_thread().name)
        if len(calls) >= 4:  # the hook before the request, then polls while it is out
            waited.set()

    def slow_page(request):
        # Answers only once the caller's thread has polled a few times meanwhile.
        assert waited.wait(timeout=10), "on_wait was not called while the page was out"
        return 200, {}, json.dumps(page([load_fixture("customer")], 1, 1))

    polar_http.add_callback("GET", CUSTOMERS, callback=slow_page)
    c = PolarClient(access_token=TOKEN, server=BASE_URL, on_wait=on_wait, wait_slice=0.01)
    assert len(list(c.iter_pages(prefetch=True))) == 1
    assert set(calls) == {caller}
