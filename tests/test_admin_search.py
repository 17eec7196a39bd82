"""The admin's customer search: what it finds, and SQL that indexes can serve."""

from __future__ import annotations

import importlib
import re
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from polar_sync.admin.search import customers_matching
from polar_sync.models import Customer, Member
from tests.factories import make_customer

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")
trgm = importlib.import_module("polar_sync.migrations.0012_customer_email_trgm")


def listed(response) -> set[str]:
    return set(re.findall(r'name="_selected_action" value="([0-9a-f-]{36})"', response.text))


def add_member(customer: Customer, n: int, **fields) -> Member:
    defaults = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "email": f"member{n}@acme.dev",
        "name": f"Member {n}",
        "role": "member",
        "created_at": customer.created_at,
        "raw": {},
        "synced_at": customer.synced_at,
    }
    return Member.objects.create(customer=customer, **{**defaults, **fields})


def test_a_team_found_by_two_members_is_listed_once_without_distinct(admin_client):
    team = make_customer(name="Acme", email="billing@acme.dev")
    for n in range(3):
        add_member(team, n, email="shared@acme.dev" if n < 2 else "other@acme.dev")
    make_customer(email="nobody@else.dev")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(CHANGELIST, {"q": "shared@acme.dev"})
    assert listed(response) == {str(team.pk)}
    assert response.text.count(f'value="{team.pk}"') == 1
    page = [q["sql"] for q in queries.captured_queries if "LIKE" in q["sql"]]  # count, rows
    # Django's own search joined the members and made every page SELECT DISTINCT: a
    # scan and a sort of every customer, which no index can serve.
    assert len(page) == 2 and not any("DISTINCT" in sql for sql in page), page
    assert not any('JOIN "polar_sync_member"' in sql for sql in page), page


def test_every_word_must_match_and_quotes_keep_a_phrase(admin_client):
    grace = make_customer(email="grace@navy.mil", name="Grace Hopper", external_id="u-1")
    alan = make_customer(email="alan@bletchley.uk", name="Alan Turing", external_id="u-2")
    both = Customer.objects.all()
    assert set(customers_matching(both, "hopper navy")) == {grace}
    assert set(customers_matching(both, "hopper bletchley")) == set()
    assert set(customers_matching(both, '"alan turing"')) == {alan}
    assert set(customers_matching(both, '"turing alan"')) == set()
    assert set(customers_matching(both, "  ")) == {grace, alan}
    assert set(customers_matching(both, "U-")) == {grace, alan}  # case-insensitive


def test_a_member_is_matched_exactly_not_by_a_fragment():
    team = make_customer(email="team@acme.dev")
    add_member(team, 1, email="grace@hopper.dev", external_id="ext-member")
    customers = Customer.objects.all()
    assert set(customers_matching(customers, "grace@hopper.dev")) == {team}
    assert set(customers_matching(customers, "ext-member")) == {team}
    assert set(customers_matching(customers, "hopper")) == set()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the index is PostgreSQL's")
def test_the_trigram_index_serves_the_search_the_admin_runs():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [trgm.INDEX])
        if cursor.fetchone() is None:
            pytest.skip("pg_trgm is not available to this PostgreSQL role")
    queryset = customers_matching(Customer.objects.order_by(), "grace@hopper")
    with connection.cursor() as cursor:
        # On an empty table a scan is cheapest; forbid it to see whether the index fits
        # the expressions Django writes (UPPER(col::text) LIKE ...) at all.
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = queryset.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert trgm.INDEX in plan, plan
    assert plan.count("Bitmap Index Scan") == 3, plan  # email, name and external ID


class FakeCursor:
    """Answers the migration's catalogue queries; records what it was asked."""

    def __init__(self, installed: bool, available: bool) -> None:
        self.answers = {"pg_extension": installed, "pg_available_extensions": available}
        self.executed: list[str] = []
        self.last = False

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: object = None) -> None:
        self.executed.append(sql)
        self.last = next((v for k, v in self.answers.items() if f"FROM {k} " in sql), False)

    def fetchone(self) -> tuple[int] | None:
        return (1,) if self.last else None


def fake_editor(vendor: str, cursor: FakeCursor) -> SimpleNamespace:
    return SimpleNamespace(
        connection=SimpleNamespace(vendor=vendor, alias="default", cursor=lambda: cursor)
    )


def test_the_migration_does_nothing_on_sqlite_or_without_pg_trgm():
    sqlite = FakeCursor(installed=True, available=True)
    trgm.create_index(None, fake_editor("sqlite", sqlite))
    assert sqlite.executed == []
    missing = FakeCursor(installed=False, available=False)
    trgm.create_index(None, fake_editor("postgresql", missing))
    assert not any("CREATE" in sql for sql in missing.executed), missing.executed
    installed = FakeCursor(installed=True, available=True)
    trgm.create_index(None, fake_editor("postgresql", installed))
    assert installed.executed[-1] == trgm.CREATE_INDEX
    assert not any("CREATE EXTENSION" in sql for sql in installed.executed)
