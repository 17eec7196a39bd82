"""Migrations that reshape tables holding work not yet done keep that work."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("polar_sync", "0002_customer_indexes")]
AFTER = [("polar_sync", "0003_outbox_keyed_by_external_id")]


def _migrate(targets: list[tuple[str, str]]):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def at_0002(transactional_db):
    apps = _migrate(BEFORE)
    yield apps
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_keying_the_outbox_by_external_id_keeps_every_waiting_change(at_0002):
    old = at_0002.get_model("polar_sync", "PushOutbox")
    now = timezone.now()
    for n, action in enumerate(["upsert", "delete", "upsert"], start=1):
        old.objects.create(
            external_id=f"user-{n}",
            user_id=str(n),
            action=action,
            payload={"email": f"u{n}@example.com"} if action == "upsert" else {},
            status="failed" if n == 3 else "pending",
            attempts=n,
            last_error="422: nope" if n == 3 else "",
            next_attempt_at=now,
            revision=uuid.uuid4(),
            delete_first=n == 1,
            created_at=now,
            updated_at=now,
        )
    before = sorted(old.objects.values_list("external_id", "action", "status", "revision"))

    new = _migrate(AFTER).get_model("polar_sync", "PushOutbox")

    assert new._meta.pk.name == "external_id"
    assert sorted(new.objects.values_list("external_id", "action", "status", "revision")) == before
    assert new.objects.get(pk="user-1").delete_first is True
    assert new.objects.get(pk="user-3").last_error == "422: nope"
