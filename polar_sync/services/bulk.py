"""One ``INSERT ... ON CONFLICT DO UPDATE`` for a page of rows.

Django's ``bulk_create(update_conflicts=True)`` spends most of a page's time
building model instances and compiling every value through the generic
insert compiler, which made a pull several times slower than fetching the
same pages. PostgreSQL and SQLite share the ``ON CONFLICT`` syntax, so for
them the statement is written here directly, with each value prepared by its
field exactly as Django would (``get_db_prep_save``). Other databases take
``bulk_create``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connections, models, router

FAST_VENDORS = frozenset({"postgresql", "sqlite"})


def rows_upsert(
    *,
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    unique_field: str,
    fields: Sequence[str],
) -> None:
    """Insert ``rows`` (dicts keyed by field attname), updating ``fields`` on conflict."""
    if not rows:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    update_fields = [f for f in fields if f != unique_field]
    if connection.vendor not in FAST_VENDORS:
        model._default_manager.using(alias).bulk_create(
            [model(**row) for row in rows],
            update_conflicts=True,
            unique_fields=[unique_field],
            update_fields=[opts.get_field(f).name for f in update_fields],
        )
        return
    columns = [opts.get_field(unique_field)] + [opts.get_field(f) for f in update_fields]
    quote = connection.ops.quote_name
    # Only quoted identifiers from the model go into the SQL; values are parameters.
    column_list = ", ".join(quote(c.column) for c in columns)
    head = f"INSERT INTO {quote(opts.db_table)} ({column_list}) VALUES "  # noqa: S608
    tail = f" ON CONFLICT ({quote(columns[0].column)}) DO UPDATE SET " + ", ".join(
        f"{quote(c.column)} = EXCLUDED.{quote(c.column)}" for c in columns[1:]
    )
    row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
    prepare = [(c.attname, value_preparer(c, connection)) for c in columns]
    params = [[prep(row[attname]) for attname, prep in prepare] for row in rows]
    with connection.cursor() as cursor:
        # One statement for the page: SQLite runs it in its C loop, psycopg in a
        # pipeline, and the SQL is parsed once, not once per row.
        cursor.executemany(head + row_sql + tail, params)


def value_preparer(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save`` for the plain values a mapping produces, without
    the generic steps (expression checks, ``to_python``) that cost a third of a
    page's time: str/None, bool, int, aware datetimes, UUIDs, JSON-able objects.
    tests/test_bulk.py checks it against Django's own preparation, field by field.
    """
    internal = field.get_internal_type()
    if internal in ("CharField", "TextField", "BooleanField") or field.is_relation:
        return _same
    if internal == "UUIDField" and not connection.features.has_native_uuid_field:
        return _uuid_hex
    if internal == "UUIDField":
        return _same
    if internal == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if internal == "JSONField":
        adapt, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda value: None if value is None else adapt(value, encoder)
    return lambda value: field.get_db_prep_save(value, connection)


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    return None if value is None else value.hex
