"""The members pull: end to end against the local server (2026-04, 2026-10), and the
edge cases (404 without Polar's error, 403, no API version) with ``responses``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from io import StringIO
from urllib.parse import urlencode

import pytest
import responses
from django.core.management import call_command

from polar_sync.client import PolarClient
from polar_sync.models import Member, SyncRun
from polar_sync.services import customers_pull, members_pull
from polar_sync.services.members import FORBIDDEN_NOTE, members_forbidden, members_upsert
from polar_sync.testing import LocalPolarServer
from tests import contract
from tests.conftest import BASE_URL, TOKEN
from tests.factories import make_customer
from tests.mirror_helpers import make_user

pytestmark = pytest.mark.django_db

VERSIONS = ("2026-04", "2026-10")


@pytest.fixture(params=VERSIONS)
def polar26(request, settings) -> Iterator[LocalPolarServer]:
    """A local Polar server of a 2026 API version, POLAR_SYNC pointed at it."""
    with LocalPolarServer(api_version=request.param) as server:
        settings.POLAR_SYNC = {
            "ACCESS_TOKEN": server.token,
            "SERVER": server.url,
            "API_VERSION": request.param,
            "TIMEOUT": 5.0,
            "MAX_RETRIES": 0,
            "BACKOFF_BASE": 0.01,
            "RATE_LIMIT": 100_000,
            "PAGE_SIZE": 3,
        }
        yield server


def team(polar: LocalPolarServer, n: int, *, external_ids: list[str | None] | None = None) -> str:
    """A team customer with ``n`` members; returns its ID."""
    customer = polar.store.add_customer(email=f"team{uuid.uuid4().hex[:6]}@example.com")
    ids = external_ids or [None] * n
    for i, external_id in enumerate(ids):
        role = "owner" if i == 0 else "member"
        polar.store.add_member(customer["id"], external_id=external_id, role=role)
    return customer["id"]


def requests_conform(polar: LocalPolarServer, version: str) -> set[str]:
    """Every request the server saw is an operation of ``version``'s document."""
    seen = set()
    for record in polar.store.requests:
        query = urlencode([(k, v) for k, vs in record.query.items() for v in vs])
        url = f"{polar.url}{record.path}" + (f"?{query}" if query else "")
        seen.add(contract.validate_request(record.method, url, None, version=version))
    return seen


def test_pull_mirrors_every_member_and_links_users(polar26):
    version = polar26.api_version
    user = make_user()
    first = team(polar26, 4, external_ids=[str(user.pk), "x2", None, "x4"])
    second = team(polar26, 3)
    customers_pull()
    polar26.store.reset_requests()

    run = members_pull()

    assert (run.kind, run.status, run.created, run.deleted) == ("members", "succeeded", 7, 0)
    assert run.pages == 3 and run.total_count == 7 and run.requests == 3
    for remote in polar26.store.members():
        local = Member.objects.get(pk=remote["id"])
        assert (str(local.customer_id), local.email, local.role, local.external_id) == (
            remote["customer_id"],
            remote["email"],
            remote["role"],
            remote["external_id"],
        )
        assert local.raw == remote
    assert Member.objects.get(customer_id=first, external_id=str(user.pk)).user == user
    assert Member.objects.filter(customer_id=second).count() == 3
    assert requests_conform(polar26, version) == {"members:list_members"}
    again = members_pull()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 7)


def test_a_complete_walk_removes_members_polar_no_longer_has(polar26):
    customer_id = team(polar26, 3)
    customers_pull()
    members_pull()
    gone = polar26.store.members(customer_id)[1]
    polar26.store.delete_member(gone["id"])
    polar26.store.reset_requests()

    run = members_pull()

    assert (run.status, run.deleted) == ("succeeded", 1)
    assert not Member.objects.filter(pk=gone["id"]).exists()
    assert Member.objects.count() == 2
    # Confirmed with a GET first, which Polar answered with its own "not found".
    assert requests_conform(polar26, polar26.api_version) == {
        "members:list_members",
        "customers:members:get",
    }


def test_a_partial_walk_removes_nothing(polar26):
    team(polar26, 5)
    team(polar26, 2)
    customers_pull()
    members_pull()
    gone = polar26.store.members()[-1]
    polar26.store.delete_member(gone["id"])

    def fail_after_the_first_page(run: SyncRun) -> None:
        polar26.faults.fail_rate = 1.0

    run = members_pull(progress=fail_after_the_first_page)

    assert run.status == "failed" and run.pages == 1 and run.deleted == 0
    assert "nothing was removed" in run.error
    assert Member.objects.filter(pk=gone["id"]).exists()
    polar26.faults.fail_rate = 0.0
    assert members_pull().deleted == 1


def test_members_of_a_customer_not_in_the_mirror_wait_for_the_customer_pull(polar26):
    team(polar26, 2)
    run = members_pull()
    assert (run.status, run.created, Member.objects.count()) == ("succeeded", 0, 0)
    assert "2 members of customers not in the mirror" in run.error
    customers_pull()
    assert members_pull().created == 2


def test_the_command_pulls_members_with_all_and_prints_their_counts(polar26):
    team(polar26, 2)
    out = StringIO()
    call_command("polar_sync", "--all", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "members" in text.splitlines()[0]
    (row,) = [line for line in text.splitlines() if line.startswith("members ")]
    assert row.split()[:4] == ["members", "succeeded", "1", "2"]
    assert Member.objects.count() == 2


# -- edge cases, with responses ---------------------------------------------------------------

MEMBERS = f"{BASE_URL}/v1/members/"


def member_json(customer_id: str, **overrides) -> dict:
    payload = {
        "id": str(uuid.uuid4()),
        "created_at": "2026-05-01T10:00:00Z",
        "modified_at": None,
        "customer_id": customer_id,
        "email": f"m{uuid.uuid4().hex[:6]}@example.com",
        "name": None,
        "external_id": None,
        "role": "member",
    }
    payload.update(overrides)
    return payload


def empty_page() -> dict:
    return {"items": [], "pagination": {"total_count": 0, "max_page": 0}}


@pytest.fixture
def v26(polar_conf, sleeps):
    polar_conf(API_VERSION="2026-04", RATE_LIMIT=100_000, MAX_RETRIES=0)


def client() -> PolarClient:
    return PolarClient(access_token=TOKEN, server=BASE_URL, api_version="2026-04", max_retries=0)


def stored_member() -> Member:
    customer = make_customer()
    members_upsert(payloads=[member_json(str(customer.pk))], synced_at=None)
    member = Member.objects.get()
    Member.objects.update(synced_at="2020-01-01T00:00:00Z")
    return member


@pytest.mark.usefixtures("v26")
def test_a_404_without_polars_error_field_never_removes_a_member():
    member = stored_member()
    one = f"{BASE_URL}/v1/customers/{member.customer_id}/members/{member.pk}"
    with responses.RequestsMock() as mock:
        mock.get(MEMBERS, json=empty_page())
        mock.get(one, json={"detail": "Not Found"}, status=404)
        run = members_pull(client=client())
    assert run.status == "failed" and run.deleted == 0
    assert Member.objects.filter(pk=member.pk).exists()
    # Polar's own "not found" does remove it.
    with responses.RequestsMock() as mock:
        mock.get(MEMBERS, json=empty_page())
        mock.get(one, json={"error": "ResourceNotFound", "detail": "Not found"}, status=404)
        run = members_pull(client=client())
    assert (run.status, run.deleted) == ("succeeded", 1)


@pytest.mark.usefixtures("v26")
def test_a_member_the_walk_skipped_but_polar_still_has_is_kept():
    member = stored_member()
    one = f"{BASE_URL}/v1/customers/{member.customer_id}/members/{member.pk}"
    with responses.RequestsMock() as mock:
        mock.get(MEMBERS, json=empty_page())
        mock.get(one, json={**member.raw, "name": "Still here"})
        run = members_pull(client=client())
    assert (run.status, run.deleted) == ("succeeded", 0)
    assert Member.objects.get().name == "Still here"


@pytest.mark.usefixtures("v26")
def test_a_403_fails_the_members_pull_alone_with_the_scope_named():
    stored_member()
    with responses.RequestsMock() as mock:
        mock.get(MEMBERS, json={"detail": "Not permitted"}, status=403)
        run = members_pull(client=client())
    assert run.status == "failed" and FORBIDDEN_NOTE in run.error
    assert members_forbidden(run) and Member.objects.count() == 1


def test_no_api_version_skips_the_pull_without_a_request(polar_conf):
    polar_conf(API_VERSION=None)
    with responses.RequestsMock():  # any request would fail the test
        assert members_pull(client=client()) is None
    assert not SyncRun.objects.filter(kind="members").exists()
    out = StringIO()
    call_command("polar_sync", "--members", stdout=out, stderr=StringIO())
    assert "members: skipped: API_VERSION is None" in out.getvalue()


@pytest.mark.parametrize("version", VERSIONS)
def test_member_requests_match_the_document(version):
    cid, mid = str(uuid.uuid4()), str(uuid.uuid4())
    c = PolarClient(access_token=TOKEN, server=BASE_URL, api_version=version)
    with responses.RequestsMock() as mock:
        mock.get(MEMBERS, json=empty_page())
        mock.get(f"{BASE_URL}/v1/customers/{cid}/members/{mid}", json=member_json(cid, id=mid))
        c.list_members(
            customer_id=cid,
            external_customer_id="acme",
            role="owner",
            page=2,
            limit=100,
            sorting=["created_at"],
        )
        c.get_member(cid, mid)
        seen = [
            contract.validate_request(
                call.request.method, call.request.url, call.request.body, version=version
            )
            for call in mock.calls
        ]
        assert all(call.request.headers["Polar-Version"] == version for call in mock.calls)
    assert seen == ["members:list_members", "customers:members:get"]
