"""The bulk upsert's value preparation agrees with Django's, field by field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from polar_sync.models import Customer
from polar_sync.services.bulk import rows_upsert, value_preparer
from polar_sync.services.customers import WRITTEN_FIELDS
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


def test_rows_written_by_the_upsert_read_back_as_written():
    from polar_sync.mapping import customer_fields

    fields = customer_fields(customer_payload(billing_address=None, tax_id=["123", "us_ein"]))
    row = {**fields, "synced_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), "user_id": None}
    rows_upsert(model=Customer, rows=[row], unique_field="id", fields=WRITTEN_FIELDS)
    stored = Customer.objects.get(pk=fields["id"])
    for name in WRITTEN_FIELDS:
        assert getattr(stored, name) == row[name], name
