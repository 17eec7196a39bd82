"""Catching what no save announced: every mirrored user compared with what Polar has.

Now and then (a beat task, or ``polar_push --reconcile``) an upsert is queued for each
user whose payload differs from what Polar was last given. That catches users from
before polar_sync or made without a signal (``bulk_create``, ``QuerySet.update()``,
``loaddata``), and customers deleted in Polar while their user lives on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import router, transaction

from ...conf import polar_settings
from ...mapping import user_external_id
from ...models import Customer, PushedPayload, PushOutbox
from . import rows
from .drain import DISABLED
from .enqueue import outbox_enqueue
from .record import upsert_needed, user_is_mirrored, user_is_staff, user_payload_build

BATCH = 500


@dataclass
class ReconcileResult:
    checked: int = 0  # mirrored users compared
    queued: int = 0  # upserts written to the outbox
    skipped: int = 0  # users USER_FILTER excludes
    staff: int = 0  # staff and superusers, not pushed without PUSH_STAFF
    stopped: str = ""
    dry_run: bool = False
    would_queue: list[str] = field(default_factory=list)  # external IDs (dry run)

    def as_dict(self) -> dict[str, Any]:
        """What a task reports."""
        keys = ("checked", "queued", "skipped", "staff", "stopped")
        return {key: getattr(self, key) for key in keys}


def users_reconcile(
    *, batch_size: int = BATCH, enqueue: bool = True, dry_run: bool = False
) -> ReconcileResult:
    """Queue an upsert for every mirrored user whose customer Polar may not hold as it is;
    drained after each batch commits, unless ``enqueue`` is False (the caller drains).
    ``dry_run``: write nothing, lock nothing; ``would_queue`` lists what would be queued."""
    result = ReconcileResult(dry_run=dry_run)
    if not polar_settings().PUSH_ENABLED:
        result.stopped = DISABLED
        return result
    # Each batch is read in its transaction with its users locked, so that a user
    # deleted or changed meanwhile is not queued with what it was (a deleted user's
    # customer created again, an older payload over a newer one): their delete or
    # save waits for the batch and then writes its own row over reconcile's.
    model = get_user_model()
    database = router.db_for_write(model)
    users = model._default_manager.using(database).order_by("pk")
    if not dry_run:
        users = users.select_for_update(of=("self",))
    last_pk = None
    while True:
        with transaction.atomic(using=database):
            batch = list((users if last_pk is None else users.filter(pk__gt=last_pk))[:batch_size])
            if not batch:
                return result
            last_pk = batch[-1].pk
            queued = _batch_reconcile(users=batch, result=result)
            if queued and enqueue:
                transaction.on_commit(
                    partial(outbox_enqueue, external_ids=sorted(queued)), using=database
                )


def _batch_reconcile(*, users: list[Any], result: ReconcileResult) -> set[str]:
    conf = polar_settings()
    wanted: dict[str, tuple[Any, dict[str, Any]]] = {}
    for user in users:
        if not conf.PUSH_STAFF and user_is_staff(user):
            result.staff += 1
            continue
        if not user_is_mirrored(user=user, conf=conf):
            result.skipped += 1
            continue
        external_id = user_external_id(user, conf.USER_EXTERNAL_ID_FIELD)
        wanted[external_id] = (user, user_payload_build(user=user, conf=conf))
    result.checked += len(wanted)
    ids = list(wanted)
    pushed = dict(
        PushedPayload.objects.filter(external_id__in=ids).values_list("external_id", "payload")
    )
    waiting = {
        external_id: (action, payload)
        for external_id, action, payload in PushOutbox.objects.filter(
            external_id__in=ids
        ).values_list("external_id", "action", "payload")
    }
    never_pushed = wanted.keys() - pushed.keys()
    live = Customer.objects.filter(external_id__in=never_pushed, deleted_at__isnull=True)
    mirrored = dict(live.values_list("external_id", "raw"))
    queued: set[str] = set()
    for external_id, (user, payload) in wanted.items():
        if not upsert_needed(
            payload=payload,
            waiting=waiting.get(external_id),
            pushed=pushed.get(external_id),
            mirrored=mirrored.get(external_id),
        ):
            continue
        if result.dry_run:
            result.would_queue.append(external_id)
            continue
        rows.write(
            external_id=external_id,
            user_id=str(user.pk),
            action=PushOutbox.Action.UPSERT,
            payload=payload,
            delete_first=waiting.get(external_id, (None,))[0] == PushOutbox.Action.DELETE,
        )
        queued.add(external_id)
    result.queued += len(queued)
    return queued
