"""Values as a page upsert sends them: one function per column, chosen once.

``bulk.UpsertPlan`` prepares a page's values in the thread that prefetches the
next page, so the preparers are pure: the connection is only read (vendor,
features, time zone) when one is chosen. ``sqlite_max_params`` asks the
connection itself, at write time.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models

# Field types whose values the PostgreSQL path can put into a JSON document as
# PostgreSQL reads them back (a datetime as ISO 8601 with its offset, a UUID as text).
JSON_DOCUMENT_TYPES = frozenset(
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


def json_document_ready(field: models.Field) -> bool:
    if field.is_relation:
        return json_document_ready(field.target_field)
    if field.get_internal_type() == "JSONField":
        return field.encoder is None  # a custom encoder may write what json.dumps cannot
    return field.get_internal_type() in JSON_DOCUMENT_TYPES


def json_document_value(value: Any) -> Any:
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


def sqlite_max_params(connection: Any) -> int:
    """How many parameters one SQLite statement takes (999 before SQLite 3.32)."""
    connection.ensure_connection()
    try:
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11
        return connection.features.max_query_params
