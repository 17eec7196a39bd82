"""The bulk upsert: what it writes, what it leaves alone, and its value preparation.

The behaviour tests run twice: through the database's own statement (CI runs
them on SQLite and on PostgreSQL) and through the generic ``bulk_create`` path
that other databases take.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction

from polar_sync.mapping import customer_fields
from polar_sync.models import Customer
from polar_sync.services import bulk
from polar_sync.services.bulk import Lookup, UpsertPlan, Written
from polar_sync.services.bulk_values import value_preparer
from polar_sync.services.customers import COMPARED_FIELDS, WRITTEN_FIELDS
from tests.factories import customer_payload

pytestmark = pytest.mark.django_db

SAMPLES = {
    "UUIDField": [uuid.uuid4(), None],
    "DateTimeField": [datetime(2025, 3, 1, 10, 0, 0, 123456, tzinfo=UTC), None],
    "JSONField": [{"a": [1, "é", None, 0.5, True]}, ["x", "eu_vat"], {}, None],
    "CharField": ["usr_1337", "", None],
    "TextField": ["https://example.com/a.png", ""],
    "BooleanField": [True, False],
    "ForeignKey": [7, None],
}


def comparable(value):
    # psycopg's Jsonb wrapper has no equality of its own: compare what it wraps.
    return getattr(value, "obj", value)


@pytest.mark.parametrize("name", WRITTEN_FIELDS)
def test_each_written_field_is_prepared_as_django_prepares_it(name):
    field = next(f for f in Customer._meta.concrete_fields if name in (f.name, f.attname))
    fast = value_preparer(field, connection)
    kind = "ForeignKey" if field.is_relation else field.get_internal_type()
    samples = [v for v in SAMPLES[kind] if v is not None or field.null]
    assert samples
    for value in samples:
        assert comparable(fast(value)) == comparable(field.get_db_prep_save(value, connection))


def test_rows_written_by_the_upsert_read_back_as_written(path):
    fields = customer_fields(customer_payload(billing_address=None, tax_id=["123", "us_ein"]))
    row = {**fields, "synced_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "user_id": None}
    plan = UpsertPlan(model=Customer, unique_field="id", fields=WRITTEN_FIELDS)
    plan.write(plan.prepare([row]))
    stored = Customer.objects.get(pk=fields["id"])
    for name in WRITTEN_FIELDS:
        assert getattr(stored, name) == row[name], name


@pytest.fixture(params=["database", "generic"])
def path(request, monkeypatch):
    if request.param == "generic":
        monkeypatch.setattr(bulk, "FAST_VENDORS", frozenset())
    return request.param


def _row(**overrides):
    fields = customer_fields(customer_payload(**overrides))
    return {**fields, "synced_at": datetime(2025, 1, 2, tzinfo=UTC), "user_id": None}


def _upsert(rows, **options):
    plan = UpsertPlan(model=Customer, unique_field="id", fields=WRITTEN_FIELDS)
    return plan.write(plan.prepare(rows), distinct_on=COMPARED_FIELDS, **options)


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


def test_each_compared_field_counts_as_a_change(path):
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


def test_not_older_keeps_the_newer_stored_row(path):
    row = _row(modified_at="2025-03-01T10:00:00Z")
    _upsert([row])
    older = {**_row(id=str(row["id"]), modified_at="2025-02-01T10:00:00Z"), "name": "Old"}
    assert _upsert([older], not_older="modified_at") == Written()
    assert Customer.objects.get(pk=row["id"]).name == row["name"]
    newer = {**_row(id=str(row["id"]), modified_at="2025-04-01T10:00:00Z"), "name": "New"}
    assert _upsert([newer], not_older="modified_at") == Written(updated=1)
    assert Customer.objects.get(pk=row["id"]).name == "New"


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
    with pytest.raises(IntegrityError), transaction.atomic():
        _upsert([_row(external_id="u-9")])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and xmax are PostgreSQL's")
def test_postgresql_leaves_unchanged_rows_untouched_not_even_locked():
    row = _row()
    _upsert([row])
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmax::text FROM polar_sync_customer WHERE id = %s", [row["id"]])
        before = cursor.fetchone()[0]
        assert _upsert([row]) == Written()
        # ON CONFLICT ... DO UPDATE locks a conflicting row (setting its xmax, a write
        # to its page) even when its WHERE skips the update: unchanged rows must not
        # get that far.
        cursor.execute("SELECT xmax::text FROM polar_sync_customer WHERE id = %s", [row["id"]])
        assert cursor.fetchone()[0] == before == "0"


def _plan():
    return UpsertPlan(model=Customer, unique_field="id", fields=WRITTEN_FIELDS, late=["user_id"])


def test_a_late_column_is_filled_by_its_lookup_when_written(path, django_assert_num_queries):
    alice, bob = (get_user_model().objects.create_user(n) for n in ("alice", "bob"))
    rows = [_row(external_id="ext-a"), _row(external_id="ext-b"), _row(external_id=None)]
    for row in rows:
        del row["user_id"]  # not known when the page is prepared
    plan = _plan()
    with django_assert_num_queries(0):  # pure: may run in the prefetching thread
        prepared = plan.prepare(rows)
    users = {"ext-a": alice.pk, "ext-b": bob.pk}
    assert plan.write(prepared, lookups={"user_id": Lookup("external_id", users)}) == Written(
        created=3
    )
    linked = dict(Customer.objects.values_list("external_id", "user_id"))
    assert linked == {"ext-a": alice.pk, "ext-b": bob.pk, None: None}

    # A link that changes is a change, and only that row is rewritten.
    users["ext-b"] = alice.pk
    written = plan.write(
        plan.prepare(rows),
        lookups={"user_id": Lookup("external_id", users)},
        distinct_on=COMPARED_FIELDS,
    )
    assert written == Written(updated=1)
    assert Customer.objects.get(external_id="ext-b").user_id == alice.pk


def test_write_refuses_lookups_that_do_not_match_the_plans_late_columns():
    plan = _plan()
    with pytest.raises(ValueError, match="user_id"):
        plan.write(plan.prepare([_row()]))


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's parameter limit")
def test_sqlite_splits_a_page_by_its_parameter_limit(monkeypatch):
    # Room for two rows per statement: seven rows need four INSERTs, and the
    # counts are summed over them.
    monkeypatch.setattr(bulk, "sqlite_max_params", lambda connection: 2 * len(WRITTEN_FIELDS))
    rows = [_row() for _ in range(7)]
    assert _upsert(rows) == Written(created=7)
    changed = [{**row, "raw": {**row["raw"], "name": "x"}} for row in rows[:5]]
    assert _upsert(changed + rows[5:]) == Written(updated=5)
    assert Customer.objects.count() == 7
