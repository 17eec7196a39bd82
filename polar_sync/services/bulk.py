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
- SQLite learns which rows exist with one small SELECT, then inserts the new
  rows with a plain multi-row INSERT and the others with the conflict clause,
  each value prepared by its field as Django would.

:class:`UpsertPlan` splits the work: ``prepare`` is pure, so a pull runs it in
the thread that prefetches the next page; ``write`` runs in the caller's
thread and transaction.

Other databases take ``bulk_create`` after comparing the rows in Python.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.models import Q

from .bulk_values import (
    json_document_ready,
    json_document_value,
    sqlite_max_params,
    value_preparer,
)

FAST_VENDORS = frozenset({"postgresql", "sqlite"})


@dataclass(frozen=True)
class Written:
    """What an upsert wrote: rows inserted, rows updated (the others were unchanged)."""

    created: int = 0
    updated: int = 0


@dataclass(frozen=True)
class Lookup:
    """A column filled when the rows are written: ``values.get(row[source])``."""

    source: str
    values: Mapping[Any, Any]


@dataclass
class Prepared:
    """Rows made ready for one database, without touching it."""

    rows: list[dict[str, Any]]
    document: str | None = None  # PostgreSQL: the rows as one JSON array
    params: list[list[Any]] | None = None  # SQLite: each row's values, column by column


class UpsertPlan:
    """How rows of ``model`` are upserted on its database, in three steps.

    Built in the caller's thread (it reads the connection's vendor and time
    zone); :meth:`prepare` is pure and may run in any thread, such as the one
    prefetching the next page, so that preparing a page overlaps with writing
    the previous one; :meth:`write` runs in the caller's thread, inside its
    transaction. ``late`` columns are left out of the preparation and filled at
    write time by a :class:`Lookup` (a user's primary key by external ID needs
    a query, which belongs to the caller's thread).
    """

    def __init__(
        self,
        *,
        model: type[models.Model],
        unique_field: str,
        fields: Sequence[str],
        late: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.alias = router.db_for_write(model)
        connection = connections[self.alias]
        opts = model._meta
        self.columns = [opts.get_field(unique_field)] + [
            opts.get_field(f) for f in fields if f != unique_field
        ]
        self.late = frozenset(late)
        vendor = connection.vendor if connection.vendor in FAST_VENDORS else None
        if vendor == "postgresql" and not all(json_document_ready(c) for c in self.columns):
            vendor = None
        self.vendor = vendor
        preparers = [(c.attname, value_preparer(c, connection)) for c in self.columns]
        # prepare() leaves the late columns empty; write() fills them (SQLite).
        self._preparers = [(a, None if a in self.late else p) for a, p in preparers]
        self._late_preparers = [(i, a, p) for i, (a, p) in enumerate(preparers) if a in self.late]
        self._renamed = any(c.attname != c.column for c in self.columns)

    def prepare(self, rows: Sequence[dict[str, Any]]) -> Prepared:
        """The rows (dicts keyed by field attname) in the form :meth:`write` sends.

        No database access: safe in any thread.
        """
        rows = list(rows)
        if self.vendor == "postgresql":
            documents = rows
            if self._renamed:
                documents = [{c.column: row.get(c.attname) for c in self.columns} for row in rows]
            # Keys that are not written columns are ignored by the statement.
            text = json.dumps(documents, default=json_document_value, ensure_ascii=False)
            return Prepared(rows=rows, document=text)
        if self.vendor == "sqlite":
            preparers = self._preparers
            params = [
                [None if prep is None else prep(row[att]) for att, prep in preparers]
                for row in rows
            ]
            return Prepared(rows=rows, params=params)
        return Prepared(rows=rows)

    def write(
        self,
        prepared: Prepared,
        *,
        lookups: Mapping[str, Lookup] | None = None,
        distinct_on: Sequence[str] = (),
        not_older: str | None = None,
        takes_over: str | None = None,
    ) -> Written:
        """Insert the rows, updating the plan's fields on conflict.

        With ``distinct_on``, a row that already exists is rewritten only when
        one of those fields differs from the stored value; with ``not_older`` (a
        datetime field), never by a value older than the stored one.
        ``takes_over`` names a nullable unique field whose incoming values are
        first cleared on any other row holding them (Polar gives a deleted
        customer's external ID to a new one).
        """
        lookups = dict(lookups or {})
        if set(lookups) != self.late:
            raise ValueError(f"lookups for {sorted(lookups)}; the plan leaves {sorted(self.late)}")
        if not prepared.rows:
            return Written()
        if self.vendor == "postgresql":
            return self._write_postgresql(prepared, lookups, distinct_on, not_older, takes_over)
        rows = prepared.rows
        if lookups:
            rows = [
                {**row, **{a: lk.values.get(row[lk.source]) for a, lk in lookups.items()}}
                for row in rows
            ]
        key = self.columns[0].attname
        existing = _existing_and_released(self.model, self.alias, rows, key, takes_over)
        if self.vendor == "sqlite":
            return self._write_sqlite(prepared, rows, existing, distinct_on, not_older)
        return _upsert_generic(
            self.model, self.alias, rows, self.columns, distinct_on, not_older, existing
        )

    def _write_postgresql(
        self,
        prepared: Prepared,
        lookups: dict[str, Lookup],
        distinct_on: Sequence[str],
        not_older: str | None,
        takes_over: str | None,
    ) -> Written:
        connection = connections[self.alias]
        quote, opts = connection.ops.quote_name, self.model._meta
        table = quote(opts.db_table)
        key = quote(self.columns[0].column)
        # Only quoted identifiers from the model go into the SQL; values are parameters.
        column_list = ", ".join(quote(c.column) for c in self.columns)
        selected, params = [], []
        for c in self.columns:
            if c.attname not in lookups:
                selected.append(f"r.{quote(c.column)}")
                continue
            lookup = lookups[c.attname]
            source = quote(opts.get_field(lookup.source).column)
            selected.append(f"(%s::json ->> r.{source}::text)::{c.db_type(connection)}")
            params.append(
                json.dumps(
                    {str(k): v for k, v in lookup.values.items()}, default=json_document_value
                )
            )
        params.append(prepared.document)
        page = (
            f"SELECT {', '.join(selected)} "  # noqa: S608
            f"FROM json_populate_recordset(NULL::{table}, %s::json) r"
        )
        ctes = [f"page ({column_list}) AS ({page})"]
        conditions = []
        if takes_over:
            held = quote(opts.get_field(takes_over).column)
            ctes.append(
                f"released AS (UPDATE {table} SET {held} = NULL "  # noqa: S608
                f"WHERE {held} IN (SELECT {held} FROM page) "
                f"AND {key} NOT IN (SELECT {key} FROM page) RETURNING 1)"
            )
            # An uncorrelated sub-select is evaluated once, before the first row is
            # inserted: the values are freed before anything can clash with them.
            conditions.append("(SELECT count(*) FROM released) >= 0")
        if distinct_on:
            # Unchanged rows stop here, before ON CONFLICT, which would lock each of
            # them (a write to its page) even when its WHERE then skips the update.
            same = f"stored.{key} = page.{key}" + "".join(
                f" AND stored.{c} IS NOT DISTINCT FROM page.{c}"
                for c in (quote(opts.get_field(f).column) for f in distinct_on)
            )
            conditions.append(f"NOT EXISTS (SELECT 1 FROM {table} stored WHERE {same})")  # noqa: S608
        where = " WHERE " + " AND ".join(conditions) if conditions else ""
        ctes.append(
            f"written AS (INSERT INTO {table} ({column_list}) "  # noqa: S608
            f"SELECT {column_list} FROM page{where}"
            + _conflict_clause(connection, self.model, self.columns, distinct_on, not_older)
            # A row version this statement inserted has no xmax; an updated one has.
            + " RETURNING xmax = 0 AS created)"
        )
        counts = " SELECT count(*) FILTER (WHERE created), count(*) FROM written"
        with connection.cursor() as cursor:
            cursor.execute("WITH " + ", ".join(ctes) + counts, params)
            created, written = cursor.fetchone()
        return Written(created=created, updated=written - created)

    def _write_sqlite(
        self,
        prepared: Prepared,
        rows: list[dict[str, Any]],
        existing: set[Any],
        distinct_on: Sequence[str],
        not_older: str | None,
    ) -> Written:
        connection = connections[self.alias]
        quote = connection.ops.quote_name
        params = prepared.params or []
        for values, row in zip(params, rows, strict=True):
            for i, att, prep in self._late_preparers:
                values[i] = prep(row[att])
        insert = f"INSERT INTO {quote(self.model._meta.db_table)} ("
        insert += ", ".join(quote(c.column) for c in self.columns) + ") VALUES "
        row_sql = "(" + ", ".join(["%s"] * len(self.columns)) + ")"
        # As many rows per statement as SQLite takes parameters: a statement
        # releases the GIL once, where executemany() releases and retakes it for
        # every row, each time waiting for the thread preparing the next page.
        per_statement = max(1, sqlite_max_params(connection) // len(self.columns))
        # With foreign keys enforced (Django always enforces them), a row inserted by
        # an ``INSERT ... DO UPDATE`` costs SQLite about 2.5 times a plain insert, so
        # new rows go in a statement of their own. SQLite has a single writer: no
        # other one can insert them between the SELECT and this statement.
        key = self.columns[0].attname
        new = [v for v, row in zip(params, rows, strict=True) if row[key] not in existing]
        old = [v for v, row in zip(params, rows, strict=True) if row[key] in existing]
        counts = [0, 0]
        clauses = (
            f" ON CONFLICT ({quote(self.columns[0].column)}) DO NOTHING",
            _conflict_clause(connection, self.model, self.columns, distinct_on, not_older),
        )
        with connection.cursor() as cursor:
            for n, (part, clause) in enumerate(zip((new, old), clauses, strict=True)):
                for i in range(0, len(part), per_statement):
                    chunk = part[i : i + per_statement]
                    sql = insert + ", ".join([row_sql] * len(chunk)) + clause
                    cursor.execute(sql, [value for values in chunk for value in values])
                    # An insert or an update counts 1, a skipped row 0.
                    counts[n] += cursor.rowcount
        return Written(created=counts[0], updated=counts[1])


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
