"""The page upsert: what it writes, what it leaves alone, and how it meets other writers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from polar_sync.mapping import customer_fields
from polar_sync.models import Customer
from polar_sync.services import bulk, customers_upsert
from polar_sync.services.bulk import UpsertPlan, Written
from polar_sync.services.customers import COMPARED_FIELDS, WRITTEN_FIELDS
from tests.factories import customer_payload

pytestmark = pytest.mark.django_db


def _row(**overrides):
    fields = customer_fields(customer_payload(**overrides))
    return {**fields, "synced_at": datetime(2025, 1, 2, tzinfo=UTC), "user_id": None}


def _upsert(rows, **options):
    plan = UpsertPlan(
        model=Customer, unique_field="id", fields=WRITTEN_FIELDS, compared=COMPARED_FIELDS
    )
    with transaction.atomic():
        return plan.write(rows, **options)


@pytest.fixture(params=["database", "orm"])
def path(request, monkeypatch):
    """Each test runs through the database's own insert (PostgreSQL's JSON document)
    and through ``bulk_create``, which every other database takes."""
    if request.param == "orm":
        monkeypatch.setattr(bulk.UpsertPlan, "_json_insert", property(lambda self: False))
    return request.param


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]


def test_rows_written_by_the_upsert_read_back_as_written(path):
    fields = customer_fields(customer_payload(billing_address=None, tax_id=["123", "us_ein"]))
    row = {**fields, "synced_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "user_id": None}
    _upsert([row])
    stored = Customer.objects.get(pk=fields["id"])
    for name in WRITTEN_FIELDS:
        assert getattr(stored, name) == row[name], name


def test_new_rows_are_created_and_changed_rows_updated_and_the_rest_left_alone(path):
    a, b, c = _row(), _row(), _row()
    assert _upsert([a, b]) == Written(created=2, updated=0)
    synced = Customer.objects.get(pk=a["id"]).synced_at

    b_changed = {**b, "raw": {**b["raw"], "name": "B2"}, "name": "B2"}
    later = {"synced_at": datetime(2025, 6, 1, tzinfo=UTC)}
    assert _upsert([{**a, **later}, {**b_changed, **later}, c]) == Written(created=1, updated=1)

    assert Customer.objects.count() == 3
    assert Customer.objects.get(pk=b["id"]).name == "B2"
    # The unchanged row was not rewritten: its synced_at is the first one.
    assert Customer.objects.get(pk=a["id"]).synced_at == synced


def test_an_unchanged_page_runs_no_write_and_a_changed_row_is_the_only_one_written():
    rows = [_row() for _ in range(5)]
    _upsert(rows)
    later = datetime(2025, 6, 1, tzinfo=UTC)
    with CaptureQueriesContext(connection) as unchanged:
        assert _upsert([{**r, "synced_at": later} for r in rows]) == Written()
    assert writes(unchanged) == []

    changed = {**rows[2], "raw": {**rows[2]["raw"], "locale": "fr"}, "synced_at": later}
    with CaptureQueriesContext(connection) as one:
        assert _upsert([*rows[:2], changed, *rows[3:]]) == Written(updated=1)
    assert [s.split()[0].upper() for s in writes(one)] == ["UPDATE"]
    synced = dict(Customer.objects.values_list("id", "synced_at"))
    assert [synced[r["id"]] == later for r in rows] == [False, False, True, False, False]


def test_each_compared_field_counts_as_a_change():
    user = get_user_model().objects.create_user("cmp")
    base = _row()
    _upsert([base])
    changes = {
        "raw": {**base["raw"], "locale": "fr"},
        "external_id": "another-ext",
        "user_id": user.pk,
        "deleted_at": datetime(2025, 5, 5, tzinfo=UTC),
    }
    assert set(changes) == set(COMPARED_FIELDS)
    for name, value in changes.items():
        assert _upsert([{**base, name: value}]) == Written(updated=1), name
        assert _upsert([{**base, name: value}]) == Written(), name  # now stored
        _upsert([base])


def test_not_older_keeps_the_newer_stored_row():
    row = _row(modified_at="2025-03-01T10:00:00Z")
    _upsert([row])
    older = {**_row(id=str(row["id"]), modified_at="2025-02-01T10:00:00Z"), "name": "Old"}
    assert _upsert([older], not_older="modified_at") == Written()
    assert Customer.objects.get(pk=row["id"]).name == row["name"]
    assert _upsert([older]) == Written(updated=1)  # without not_older, older still wins
    newer = {**_row(id=str(row["id"]), modified_at="2025-04-01T10:00:00Z"), "name": "New"}
    assert _upsert([newer], not_older="modified_at") == Written(updated=1)
    assert Customer.objects.get(pk=row["id"]).name == "New"


def test_not_older_accepts_rows_without_a_date_on_either_side():
    row = _row(modified_at=None)
    _upsert([row])
    dated = {**_row(id=str(row["id"]), modified_at="2025-02-01T10:00:00Z"), "name": "Dated"}
    assert _upsert([dated], not_older="modified_at") == Written(updated=1)
    undated = {**_row(id=str(row["id"]), modified_at=None), "name": "Undated"}
    assert _upsert([undated], not_older="modified_at") == Written(updated=1)


def test_a_taken_over_unique_value_is_freed_from_the_row_holding_it(path):
    holder, bystander = _row(external_id="u-7"), _row(external_id="u-8")
    _upsert([holder, bystander])
    newcomer = _row(external_id="u-7")
    assert _upsert([newcomer], takes_over="external_id") == Written(created=1)
    assert Customer.objects.get(external_id="u-7").pk == newcomer["id"]
    assert Customer.objects.get(pk=holder["id"]).external_id is None
    assert Customer.objects.get(pk=bystander["id"]).external_id == "u-8"


def test_without_take_over_a_clash_on_a_unique_value_is_an_error(path):
    _upsert([_row(external_id="u-9")])
    with pytest.raises(IntegrityError):
        _upsert([_row(external_id="u-9")])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and xmax are PostgreSQL's")
def test_postgresql_leaves_unchanged_rows_untouched_not_even_locked():
    row = _row()
    _upsert([row])
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmax::text FROM polar_sync_customer WHERE id = %s", [row["id"]])
        before = cursor.fetchone()[0]
        assert _upsert([row]) == Written()
        cursor.execute("SELECT xmax::text FROM polar_sync_customer WHERE id = %s", [row["id"]])
        assert cursor.fetchone()[0] == before == "0"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs a second connection writing at once"
)
@pytest.mark.django_db(transaction=True)
def test_a_customer_inserted_by_another_writer_mid_page_is_written_on_the_retry():
    """A webhook commits a customer between the page's read and its insert: the
    insert fails on the primary key, and the retry finds the row and updates it."""
    payloads = [customer_payload(name=f"P{i}") for i in range(3)]
    webhook = dict(payloads[1], name="From the webhook")
    inserts = []

    def other_writer_first(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("INSERT") and "polar_sync_customer" in sql:
            inserts.append(sql)
            if len(inserts) == 1:
                thread = threading.Thread(target=_upsert_and_close, args=([webhook],))
                thread.start()
                thread.join(30)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(other_writer_first):
        result = customers_upsert(payloads=payloads)
    assert len(inserts) == 2  # ours, failing on the webhook's row, then ours again
    assert (result.created, result.updated, result.unchanged) == (2, 1, 0)
    names = set(Customer.objects.values_list("name", flat=True))
    assert names == {"P0", "P1", "P2"}


def _upsert_and_close(payloads):
    try:
        customers_upsert(payloads=payloads)
    finally:
        connections.close_all()
