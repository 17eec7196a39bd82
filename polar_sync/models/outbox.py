"""The push outbox: local user changes waiting to reach Polar, and what was last pushed.

A receiver writes a :class:`PushOutbox` row in the same transaction as the user
change, so a rolled-back change pushes nothing and a committed one is never lost,
whatever happens to Polar or to the broker afterwards. Rows coalesce: there is at
most one row per external ID, holding the latest wish (upsert with the newest
payload, or delete). A row disappears once Polar has it.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from django.db import connections, models, router
from django.db.models import Q
from django.utils import timezone

PUSHED = "pushed"  # marks the PushedPayload side of waiting_and_pushed's UNION
# Backends whose INSERT ... ON CONFLICT (external_id) DO UPDATE is written out below.
ON_CONFLICT_VENDORS = frozenset({"sqlite", "postgresql"})
# change_record's parameters, in the columns' order (its other values are constants).
CHANGE_PARAMETERS = (
    "external_id",
    "user_id",
    "payload",
    "next_attempt_at",
    "revision",
    "created_at",
    "updated_at",
)
# What a new change overwrites in the user's row (the lock and created_at stay).
CHANGE_FIELDS = (
    "user_id",
    "action",
    "payload",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
    "revision",
    "updated_at",
)


class PushOutboxManager(models.Manager["PushOutbox"]):
    """The queries that run inside user saves, in plain SQL: the ORM spends ten times
    longer building them than the database takes to answer (identifiers come from the
    models and are quoted; values are parameters). On the manager rather than a
    queryset, so that calling one builds no QuerySet."""

    def waiting_and_pushed(self, external_id: str) -> tuple[tuple[str, Any] | None, Any]:
        """The waiting row's (action, payload) and the last pushed payload, in one query."""
        connection = connections[router.db_for_write(self.model)]
        payload_field = _payload_field()
        with connection.cursor() as cursor:
            sql = _waiting_and_pushed_sql(connection.alias)
            cursor.execute(sql, [external_id, PUSHED, external_id])
            rows = cursor.fetchall()
        waiting, pushed = None, None
        for kind, body in rows:
            body = payload_field.from_db_value(body, None, connection)
            if kind == PUSHED:
                pushed = body
            else:
                waiting = (kind, body)
        return waiting, pushed

    def upsert(self, row: PushOutbox, update_fields: list[str]) -> None:
        """Insert ``row``, or overwrite ``update_fields`` of the row with its external ID."""
        connection = connections[router.db_for_write(self.model)]
        if connection.vendor not in ON_CONFLICT_VENDORS:
            self.bulk_create(
                [row], update_conflicts=True, unique_fields=["external_id"],
                update_fields=update_fields,
            )  # fmt: skip
            return
        fields = _insert_fields()
        params = [f.get_db_prep_save(getattr(row, f.attname), connection) for f in fields]
        with connection.cursor() as cursor:
            cursor.execute(_upsert_sql(connection.alias, tuple(update_fields)), params)

    def change_record(self, *, external_id: str, user_id: str | None, payload: Any) -> bool | None:
        """Queue an upsert of ``payload`` in one query, unless that very upsert waits already.

        The row gets a fresh start (pending, no attempts, due now, a new revision); one
        that replaces a waiting delete keeps "delete the old customer first". A failed
        row with the same payload stays failed: it would fail again. Returns whether a
        row was written, or None on a database without ``ON CONFLICT`` (the caller then
        reads the row and writes it itself).
        """
        connection = connections[router.db_for_write(self.model)]
        if connection.vendor not in ON_CONFLICT_VENDORS:
            return None
        # This runs inside every user save that changes the payload: the constant
        # values are written into the statement, and the others are prepared once,
        # rather than through each field (which cost more than the query itself).
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        revision = uuid.uuid4()
        params = [
            external_id,
            user_id,
            _payload_field().get_db_prep_save(payload, connection),
            now,
            revision if connection.features.has_native_uuid_field else revision.hex,
            now,
            now,
        ]
        with connection.cursor() as cursor:
            cursor.execute(_change_sql(connection.alias), params)
            return cursor.rowcount > 0


@functools.cache
def _payload_field() -> models.Field:
    return PushOutbox._meta.get_field("payload")


@functools.cache
def _insert_fields() -> list[models.Field]:
    return list(PushOutbox._meta.concrete_fields)


@functools.cache
def _waiting_and_pushed_sql(alias: str) -> str:
    q = connections[alias].ops.quote_name
    outbox, pushed = q(PushOutbox._meta.db_table), q(PushedPayload._meta.db_table)
    action, payload, external_id = q("action"), q("payload"), q("external_id")
    return (
        f"SELECT {action}, {payload} FROM {outbox} WHERE {external_id} = %s "  # noqa: S608
        f"UNION ALL SELECT %s, {payload} FROM {pushed} WHERE {external_id} = %s"
    )


@functools.cache
def _upsert_sql(alias: str, update_fields: tuple[str, ...]) -> str:
    q = connections[alias].ops.quote_name
    columns = [q(f.column) for f in _insert_fields()]
    updates = [
        f"{q(c)} = excluded.{q(c)}"
        for c in (PushOutbox._meta.get_field(name).column for name in update_fields)
    ]
    return (
        f"INSERT INTO {q(PushOutbox._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({q('external_id')}) DO UPDATE SET {', '.join(updates)}"
    )


@functools.cache
def _change_sql(alias: str) -> str:
    q = connections[alias].ops.quote_name
    table = q(PushOutbox._meta.db_table)
    upsert, delete = (f"'{a.value}'" for a in (PushOutbox.Action.UPSERT, PushOutbox.Action.DELETE))
    # The constant values are written into the statement; the others are parameters.
    constants = {
        "action": upsert,
        "status": f"'{PushOutbox.Status.PENDING.value}'",
        "attempts": "0",
        "last_error": "''",
        "locked_until": "NULL",
        "delete_first": "FALSE",
    }
    fields = _insert_fields()
    parameters = [f.attname for f in fields if f.attname not in constants]
    if parameters != list(CHANGE_PARAMETERS):
        raise RuntimeError(f"PushOutbox's fields changed: {parameters}")
    values = [constants.get(f.attname, "%s") for f in fields]
    updates = [f"{q(c)} = excluded.{q(c)}" for c in CHANGE_FIELDS]
    action, payload, first = (f"{table}.{q(c)}" for c in ("action", "payload", "delete_first"))
    return (
        f"INSERT INTO {table} ({', '.join(q(f.column) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(values)}) "
        f"ON CONFLICT ({q('external_id')}) DO UPDATE SET {', '.join(updates)}, "
        f"{q('delete_first')} = ({action} = {delete} OR {first}) "
        f"WHERE {action} <> {upsert} OR {payload} <> excluded.{q('payload')}"
    )


class PushOutbox(models.Model):
    """One user's change waiting to be pushed to Polar (at most one row per external ID)."""

    class Action(models.TextChoices):
        UPSERT = "upsert", "Create or update"
        DELETE = "delete", "Delete"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # will be pushed (now, or after a backoff)
        FAILED = "failed", "Failed"  # Polar refused it: waits for a new change or --retry-failed

    # The key: one row per external ID, and no surrogate key to number and index in
    # every user save that writes a row.
    external_id = models.CharField(
        max_length=255, primary_key=True, help_text="The customer's external ID."
    )
    # A string, not a foreign key: a delete must outlive the user row it is about.
    user_id = models.CharField(  # noqa: DJ001  (null: not known, e.g. pushed by external ID)
        max_length=255, null=True, blank=True, help_text="The local user's primary key."
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    payload = models.JSONField(default=dict, blank=True, help_text="What is sent to Polar.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Pushes tried for this revision.")
    last_error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A drain holds a row until this instant while it talks to Polar, so that two
    # workers never push one user concurrently (and out of order).
    locked_until = models.DateTimeField(null=True, blank=True)
    # A new value with every change: a drain removes the row only if it still holds the
    # revision it pushed. (Random rather than a counter, so a change is one upsert query.)
    revision = models.UUIDField(default=uuid.uuid4)
    # An upsert that replaced a pending delete of the same external ID: the old
    # customer is deleted first, so a new user never inherits an old one's customer.
    delete_first = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = PushOutboxManager()

    class Meta:
        ordering = ("next_attempt_at", "external_id")
        verbose_name = "push outbox row"
        constraints = [
            models.CheckConstraint(
                condition=Q(action__in=["upsert", "delete"]), name="polar_sync_outbox_action"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="polar_sync_outbox_due"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.external_id} ({self.status})"


class PushedPayload(models.Model):
    """The payload last accepted by Polar for each external ID.

    The receiver compares a user's new payload with it, so that a save changing
    nothing Polar cares about (``last_login``...) writes nothing and pushes nothing.
    """

    external_id = models.CharField(max_length=255, primary_key=True)
    payload = models.JSONField(default=dict)
    pushed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.external_id} pushed {self.pushed_at:%Y-%m-%d %H:%M}"
