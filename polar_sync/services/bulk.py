"""One statement for a page of rows: ``INSERT ... ON CONFLICT DO UPDATE``.

Django's ``bulk_create(update_conflicts=True)`` spends most of a page's time
building model instances and compiling every value through the generic
insert compiler, and it cannot leave unchanged rows alone. PostgreSQL and
SQLite share the ``ON CONFLICT ... DO UPDATE ... WHERE`` syntax, so for them
the statement is written here directly, and the database itself skips the
rows whose compared columns did not change:

- PostgreSQL receives the whole page as one JSON document, expanded by
  ``json_populate_recordset`` into the table's own row type, in a single
  statement that also frees taken-over unique values and counts what it
  inserted and updated: one parameter, so psycopg has nothing to quote value
  by value, and the server (another process) parses and types the rows.
- SQLite learns which rows exist with one small SELECT, then runs the insert
  once per row in its C loop (``executemany``), each value prepared by its
  field as Django would.

Other databases take ``bulk_create`` after comparing the rows in Python.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, models, router
from django.db.models import Q

FAST_VENDORS = frozenset({"postgresql", "sqlite"})
# Field types whose values the PostgreSQL path can put into a JSON document as
# PostgreSQL reads them back (a datetime as ISO 8601 with its offset, a UUID as text).
_JSON_DOCUMENT_TYPES = frozenset(
    {
        "CharField",
        "TextField",
        "BooleanField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "UUIDField",
        "DateTimeField",
        "JSONField",
    }
)


@dataclass(frozen=True)
class Written:
    """What an upsert wrote: rows inserted, rows updated (the others were unchanged)."""

    created: int = 0
    updated: int = 0


def rows_upsert(
    *,
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    unique_field: str,
    fields: Sequence[str],
    distinct_on: Sequence[str] = (),
    not_older: str | None = None,
    takes_over: str | None = None,
) -> Written:
    """Insert ``rows`` (dicts keyed by field attname), updating ``fields`` on conflict.

    With ``distinct_on``, a row that already exists is rewritten only when one
    of those fields differs from the stored value; with ``not_older`` (a
    datetime field), never by a value older than the stored one. ``takes_over``
    names a nullable unique field whose incoming values are first cleared on
    any other row holding them (Polar gives a deleted customer's external ID
    to a new one). Runs inside the caller's transaction.
    """
    if not rows:
        return Written()
    alias = router.db_for_write(model)
    connection = connections[alias]
    opts = model._meta
    columns = [opts.get_field(unique_field)] + [
        opts.get_field(f) for f in fields if f != unique_field
    ]
    vendor = connection.vendor if connection.vendor in FAST_VENDORS else None
    if vendor == "postgresql" and all(_json_document_ready(c) for c in columns):
        return _upsert_postgresql(
            connection, model, rows, columns, distinct_on, not_older, takes_over
        )
    existing = _existing_and_released(model, alias, rows, columns[0].attname, takes_over)
    if vendor == "sqlite":
        return _upsert_sqlite(connection, model, rows, columns, distinct_on, not_older, existing)
    return _upsert_generic(model, alias, rows, columns, distinct_on, not_older, existing)


def _conflict_clause(
    connection: Any,
    model: type[models.Model],
    columns: list[models.Field],
    distinct_on: Sequence[str],
    not_older: str | None,
) -> str:
    """``ON CONFLICT (key) DO UPDATE SET ... WHERE <changed> AND <not older>``."""
    quote, opts = connection.ops.quote_name, model._meta
    table = quote(opts.db_table)
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    clause = f" ON CONFLICT ({quote(columns[0].column)}) DO UPDATE SET " + ", ".join(
        f"{quote(c.column)} = EXCLUDED.{quote(c.column)}" for c in columns[1:]
    )
    conditions = []
    if distinct_on:
        compared = [quote(opts.get_field(f).column) for f in distinct_on]
        conditions.append(" OR ".join(f"{table}.{c} {distinct} EXCLUDED.{c}" for c in compared))
    if not_older:
        c = quote(opts.get_field(not_older).column)
        conditions.append(
            f"{table}.{c} IS NULL OR EXCLUDED.{c} IS NULL OR EXCLUDED.{c} >= {table}.{c}"
        )
    if conditions:
        clause += " WHERE " + " AND ".join(f"({c})" for c in conditions)
    return clause


def _upsert_postgresql(
    connection: Any,
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    columns: list[models.Field],
    distinct_on: Sequence[str],
    not_older: str | None,
    takes_over: str | None,
) -> Written:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    key = quote(columns[0].column)
    # Only quoted identifiers from the model go into the SQL; the rows are one parameter.
    column_list = ", ".join(quote(c.column) for c in columns)
    page = f"SELECT * FROM json_populate_recordset(NULL::{table}, %s::json)"  # noqa: S608
    ctes = [f"page AS ({page})"]
    guard = ""
    if takes_over:
        held = quote(model._meta.get_field(takes_over).column)
        ctes.append(
            f"released AS (UPDATE {table} SET {held} = NULL "  # noqa: S608
            f"WHERE {held} IN (SELECT {held} FROM page) AND {key} NOT IN (SELECT {key} FROM page) "
            "RETURNING 1)"
        )
        # An uncorrelated sub-select is evaluated once, before the first row is
        # inserted: the values are freed before anything can clash with them.
        guard = " WHERE (SELECT count(*) FROM released) >= 0"
    if distinct_on:
        # Unchanged rows stop here, before ON CONFLICT, which would lock each of
        # them (a write to its page) even when its WHERE then skips the update.
        same = f"stored.{key} = page.{key}" + "".join(
            f" AND stored.{c} IS NOT DISTINCT FROM page.{c}"
            for c in (quote(model._meta.get_field(f).column) for f in distinct_on)
        )
        unchanged = f"EXISTS (SELECT 1 FROM {table} stored WHERE {same})"  # noqa: S608
        guard += (" AND " if guard else " WHERE ") + f"NOT {unchanged}"
    ctes.append(
        f"written AS (INSERT INTO {table} ({column_list}) "  # noqa: S608
        f"SELECT {column_list} FROM page{guard}"
        + _conflict_clause(connection, model, columns, distinct_on, not_older)
        # A row version this statement inserted has no xmax; an updated one has.
        + " RETURNING xmax = 0 AS created)"
    )
    if any(c.attname != c.column for c in columns):
        rows = [{c.column: row[c.attname] for c in columns} for row in rows]
    # Keys that are not in the column list are ignored by the INSERT's SELECT.
    document = json.dumps(rows, default=_json_document_value, ensure_ascii=False)
    with connection.cursor() as cursor:
        counts = " SELECT count(*) FILTER (WHERE created), count(*) FROM written"
        cursor.execute("WITH " + ", ".join(ctes) + counts, [document])
        created, written = cursor.fetchone()
    return Written(created=created, updated=written - created)


def _existing_and_released(
    model: type[models.Model],
    alias: str,
    rows: Sequence[dict[str, Any]],
    key: str,
    takes_over: str | None,
) -> set[Any]:
    """The keys among ``rows`` already stored, after freeing ``takes_over`` values
    held by other rows. One SELECT; the UPDATE only when something is held."""
    keys = {row[key] for row in rows}
    manager = model._default_manager.using(alias)
    if not takes_over:
        return set(manager.filter(**{f"{key}__in": list(keys)}).values_list(key, flat=True))
    values = {row[takes_over] for row in rows if row[takes_over] is not None}
    found = manager.filter(
        Q(**{f"{key}__in": list(keys)}) | Q(**{f"{takes_over}__in": list(values)})
    )
    existing, held = set(), []
    for pk, value in found.values_list(key, takes_over):
        if pk in keys:
            existing.add(pk)
        elif value in values:
            held.append(pk)
    if held:
        manager.filter(**{f"{key}__in": held}).update(**{takes_over: None})
    return existing


def _upsert_sqlite(
    connection: Any,
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    columns: list[models.Field],
    distinct_on: Sequence[str],
    not_older: str | None,
    existing: set[Any],
) -> Written:
    quote = connection.ops.quote_name
    key = columns[0].attname
    insert = f"INSERT INTO {quote(model._meta.db_table)} ("
    insert += ", ".join(quote(c.column) for c in columns) + ") VALUES ("
    insert += ", ".join(["%s"] * len(columns)) + ")"
    prepare = [(c.attname, value_preparer(c, connection)) for c in columns]
    # With foreign keys enforced (Django always enforces them), a row inserted by
    # an ``INSERT ... DO UPDATE`` costs SQLite about 2.5 times a plain insert, so
    # new rows go in a statement of their own. SQLite has a single writer: no
    # other one can insert them between the SELECT and this statement.
    new = [row for row in rows if row[key] not in existing]
    old = [row for row in rows if row[key] in existing]
    counts = []
    with connection.cursor() as cursor:
        for part, clause in (
            (new, f" ON CONFLICT ({quote(columns[0].column)}) DO NOTHING"),
            (old, _conflict_clause(connection, model, columns, distinct_on, not_older)),
        ):
            if part:
                cursor.executemany(
                    insert + clause, [[prep(row[att]) for att, prep in prepare] for row in part]
                )
            # Summed over the rows: an insert or an update counts 1, a skipped row 0.
            counts.append(cursor.rowcount if part else 0)
    return Written(created=counts[0], updated=counts[1])


def _upsert_generic(
    model: type[models.Model],
    alias: str,
    rows: Sequence[dict[str, Any]],
    columns: list[models.Field],
    distinct_on: Sequence[str],
    not_older: str | None,
    existing: set[Any],
) -> Written:
    """``bulk_create`` for the databases without the shared ``ON CONFLICT`` syntax,
    after dropping in Python the rows the conditions would skip."""
    key = columns[0].attname
    compared = [*distinct_on, *([not_older] if not_older else [])]
    stored = {}
    if compared and existing:
        stored = {
            values[0]: values[1:]
            for values in model._default_manager.using(alias)
            .filter(**{f"{key}__in": list(existing)})
            .values_list(key, *compared)
        }
    kept = []
    for row in rows:
        old = stored.get(row[key])
        if old is not None:
            if all(row[f] == old[i] for i, f in enumerate(distinct_on)):
                continue
            if not_older and old[-1] and row[not_older] and row[not_older] < old[-1]:
                continue
        kept.append(row)
    if kept:
        model._default_manager.using(alias).bulk_create(
            [model(**row) for row in kept],
            update_conflicts=True,
            unique_fields=[columns[0].name],
            update_fields=[c.name for c in columns[1:]],
        )
    created = sum(1 for row in kept if row[key] not in existing)
    return Written(created=created, updated=len(kept) - created)


def _json_document_ready(field: models.Field) -> bool:
    if field.is_relation:
        return _json_document_ready(field.target_field)
    if field.get_internal_type() == "JSONField":
        return field.encoder is None  # a custom encoder may write what json.dumps cannot
    return field.get_internal_type() in _JSON_DOCUMENT_TYPES


def _json_document_value(value: Any) -> Any:
    """What ``json.dumps`` cannot write, as ``json_populate_recordset`` reads it:
    an aware datetime in ISO 8601 with its offset, a UUID as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot go into a JSON document of rows")


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
    if internal == "DateTimeField" and connection.vendor == "sqlite" and settings.USE_TZ:
        return _sqlite_datetime(connection.timezone)
    if internal == "DateTimeField":
        return connection.ops.adapt_datetimefield_value
    if internal == "JSONField":
        adapt, encoder = connection.ops.adapt_json_value, field.encoder
        return lambda value: None if value is None else adapt(value, encoder)
    return lambda value: field.get_db_prep_save(value, connection)


def _sqlite_datetime(tz: Any) -> Callable[[Any], Any]:
    """SQLite's text for a datetime, in the connection's time zone, without
    Django's per-value settings and expression checks."""

    def adapt(value: Any) -> Any:
        if value is None or value.utcoffset() is None:
            return None if value is None else str(value)
        return str(value.astimezone(tz).replace(tzinfo=None))

    return adapt


def _same(value: Any) -> Any:
    return value


def _uuid_hex(value: Any) -> Any:
    return None if value is None else value.hex
