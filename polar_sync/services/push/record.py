"""From a user change to an outbox row: what the receivers call, inside the user's
transaction, and the on-demand push of one user.

A save costs at most two queries: one read of what already waits for the user,
what Polar last accepted and the mirror's copy (hosted on the user's own row, so
that a ``save(update_fields=...)`` reads back in the same query the columns it left
out), then the outbox write if the payload differs. A ``save(update_fields=...)``
that names none of the watched fields (a login's ``last_login``) costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import router, transaction
from django.db.models import QuerySet, Subquery
from django.utils.module_loading import import_string

from ...conf import PolarSyncSettings, polar_settings
from ...mapping import payload_held_by, user_external_id
from ...models import Customer, PushedPayload, PushOutbox
from ..customers import users_by_external_id
from . import rows
from .drain import DISABLED, DrainResult, outbox_drain
from .enqueue import drain_on_commit

JSON = dict[str, Any]
DEFAULT_FIELDS = ("email", "first_name", "last_name")  # what mapping.user_payload reads
STAFF_FIELDS = ("is_staff", "is_superuser")  # read unless PUSH_STAFF


def user_change_record(
    *, user: Any, update_fields: Iterable[str] | None = None, using: str | None = None
) -> bool:
    """Queue the saved user's payload if Polar may not have it; True when a row was written.

    A user excluded (staff or superuser without ``PUSH_STAFF``, or by ``USER_FILTER``)
    is not pushed, and an upsert of theirs still waiting is dropped.
    """
    conf = polar_settings()
    if not conf.PUSH_ENABLED:
        return False
    model = type(user)
    watched = user_fields_watched(conf=conf, model=model)
    fresh = False
    if update_fields is not None:
        # Django accepts attribute names ("team_id") as well as field names.
        saved = {user_field_attname(model=model, name=name) or name for name in update_fields}
        if watched is not None and saved.isdisjoint(watched):
            return False  # the row's watched columns were not written
        # The row keeps the columns left out, whatever the instance holds: an unsaved
        # email must not reach Polar, so they are read back.
        fresh = watched is None or not saved.issuperset(watched)
    using = using or router.db_for_write(model, instance=user)
    external_id = user_external_id(user, conf.USER_EXTERNAL_ID_FIELD)
    as_saved, known = _read(user=user, using=using, external_id=external_id, fresh=fresh)
    if as_saved is None:
        return False  # deleted meanwhile: its delete is recorded on its own
    if user_external_id(as_saved, conf.USER_EXTERNAL_ID_FIELD) != external_id:
        # The instance holds an unsaved external ID: the row's is the one that counts.
        external_id = user_external_id(as_saved, conf.USER_EXTERNAL_ID_FIELD)
        known = _read(user=user, using=using, external_id=external_id, fresh=False)[1]
    if not user_is_mirrored(user=as_saved, conf=conf):
        return _upsert_dropped(external_id=external_id, user_id=str(user.pk), known=known)
    payload = user_payload_build(user=as_saved, conf=conf)
    waiting = (known["action"], known["payload"]) if known["action"] else None
    if not upsert_needed(
        payload=payload, waiting=waiting, pushed=known["pushed"], mirrored=known["mirrored"]
    ):
        return False
    rows.write(
        external_id=external_id,
        user_id=str(user.pk),
        action=PushOutbox.Action.UPSERT,
        payload=payload,
        delete_first=known["action"] == PushOutbox.Action.DELETE,
    )
    drain_on_commit(external_id)
    return True


def user_deletion_record(*, user: Any) -> bool:
    """Queue the delete of a deleted user's customer (it supersedes a waiting upsert)."""
    conf = polar_settings()
    if not (conf.PUSH_ENABLED and conf.DELETE_CUSTOMER_ON_USER_DELETE):
        return False
    external_id = user_external_id(user, conf.USER_EXTERNAL_ID_FIELD)
    # A user the filter excludes now may have been pushed while it included them.
    mirrored = user_is_mirrored(user=user, conf=conf)
    if not mirrored and not any(qs.exists() for qs in _traces(external_id)):
        return False
    _delete_record(external_id=external_id, user_id=str(user.pk))
    return True


def user_is_mirrored(*, user: Any, conf: PolarSyncSettings) -> bool:
    """Whether the user is pushed: not staff or superuser (unless ``PUSH_STAFF``), and let
    through by ``USER_FILTER`` (a dotted path of ``f(user) -> bool``)."""
    return not user_exclusion(user=user, conf=conf)


def user_exclusion(*, user: Any, conf: PolarSyncSettings) -> str:
    """Why the user is not pushed ("" when it is)."""
    if not conf.PUSH_STAFF and user_is_staff(user):
        return "staff and superusers are not pushed (PUSH_STAFF is False)"
    if conf.USER_FILTER and not _import(conf.USER_FILTER, "USER_FILTER")(user):
        return "USER_FILTER excludes them"
    return ""


def user_is_staff(user: Any) -> bool:
    return any(bool(getattr(user, name, False)) for name in STAFF_FIELDS)


def user_payload_build(*, user: Any, conf: PolarSyncSettings | None = None) -> JSON:
    """The user's Polar payload from ``USER_PAYLOAD``, checked to be a JSON object."""
    conf = conf or polar_settings()
    payload = _import(conf.USER_PAYLOAD, "USER_PAYLOAD")(user)
    if not isinstance(payload, dict):
        raise TypeError(
            f"POLAR_SYNC['USER_PAYLOAD'] ({conf.USER_PAYLOAD}) returned "
            f"{type(payload).__name__}; it must return a dict such as "
            "{'email': ..., 'name': ...}."
        )
    # The external ID is the row's key and is sent only on create.
    return {key: value for key, value in payload.items() if key != "external_id"}


def upsert_needed(
    *, payload: JSON, waiting: tuple[str, Any] | None, pushed: JSON | None, mirrored: JSON | None
) -> bool:
    """Whether queueing an upsert of ``payload`` changes what Polar ends up with.

    Compared with what waits (an identical upsert waiting, or failed, needs nothing),
    else with what was last pushed, else with the mirror's copy of the customer (users
    Polar already holds as they are, from before polar_sync, are not pushed again).
    """
    if waiting is not None:
        return waiting != (PushOutbox.Action.UPSERT, payload)
    if pushed is not None:
        return pushed != payload
    return not payload_held_by(mirrored, payload)


def user_fields_watched(*, conf: PolarSyncSettings, model: type) -> tuple[str, ...] | None:
    """The attribute names of the fields the payload and the filter read, plus the
    external ID's; None when they are not known (then every save is compared)."""
    names = conf.USER_FIELDS
    if names is None:
        from django.contrib.auth.models import AbstractUser

        default = conf.USER_PAYLOAD == PolarSyncSettings.USER_PAYLOAD and not conf.USER_FILTER
        # AbstractUser's get_full_name reads first_name and last_name; an override may
        # read anything.
        if default and getattr(model, "get_full_name", None) is AbstractUser.get_full_name:
            names = DEFAULT_FIELDS
    if not names:
        return None
    names = (*names, conf.USER_EXTERNAL_ID_FIELD)
    if not conf.PUSH_STAFF:
        # Becoming staff drops a waiting push; leaving the staff queues one.
        names += tuple(n for n in STAFF_FIELDS if user_field_attname(model=model, name=n))
    attnames = [user_field_attname(model=model, name=name) for name in names]
    if None in attnames:
        return None  # an external ID computed by a property, or a typo (polar_sync.E009)
    return tuple(dict.fromkeys(name for name in attnames if name is not None))


def user_field_attname(*, model: type, name: str) -> str | None:
    """The attribute name of a field stored in ``model``'s table, or None if it is not one."""
    opts = model._meta  # type: ignore[attr-defined]
    try:
        field = opts.pk if name == "pk" else opts.get_field(name)
    except FieldDoesNotExist:
        return None
    if not getattr(field, "concrete", False) or field.many_to_many:
        return None
    return str(field.attname)


def customer_push(*, external_id: str) -> DrainResult:
    """Push one local user to Polar now, whatever was pushed before.

    Without such a user it pushes nothing and says so in ``stopped``: deleting a live
    Polar customer (which cancels its subscriptions) is a deliberate act, not the side
    effect of a typo (:func:`~polar_sync.services.remote.customer_delete_in_polar`).
    """
    conf = polar_settings()
    result = DrainResult()
    if not conf.PUSH_ENABLED:
        result.stopped = DISABLED
        return result
    pk = users_by_external_id([external_id]).get(external_id)
    user = get_user_model()._default_manager.filter(pk=pk).first() if pk is not None else None
    if user is None:
        result.no_user = True
        result.stopped = f"no local user has external ID {external_id!r}: nothing to push"
        if PushOutbox.objects.filter(
            external_id=external_id, action=PushOutbox.Action.DELETE
        ).exists():
            result.stopped += (
                "; the deletion queued when the user was deleted is pushed by the "
                "outbox drain (polar_push, with --retry-failed if Polar refused it)"
            )
        return result
    excluded = user_exclusion(user=user, conf=conf)
    if excluded:
        result.stopped = f"user {external_id} is not pushed: {excluded}"
        return result
    with transaction.atomic():
        # Whatever was pushed before: the drain must not skip it as known to Polar.
        PushedPayload.objects.filter(external_id=external_id).delete()
        queued = PushOutbox.objects.filter(external_id=external_id).values_list("action", flat=True)
        rows.write(
            external_id=external_id,
            user_id=str(user.pk),
            action=PushOutbox.Action.UPSERT,
            payload=user_payload_build(user=user, conf=conf),
            delete_first=PushOutbox.Action.DELETE in queued,
        )
    return outbox_drain(external_id=external_id, retry_failed=True, force=True)


def _read(*, user: Any, using: str, external_id: str, fresh: bool) -> tuple[Any, JSON]:
    """The user as its row holds it (``fresh``: read back; else the instance itself)
    and what the outbox and the mirror hold for its external ID, in one query: the
    outbox's reads are subqueries of the user's row, or, when a router puts the outbox
    in another database (polar_sync.W004), one query per table.
    """
    users = type(user)._base_manager.using(using).filter(pk=user.pk)
    outbox, pushed, live = _traces(external_id)
    sources = [  # each table, and its columns by name
        (outbox, {"action": "action", "payload": "payload", "delete_first": "delete_first"}),
        (pushed, {"pushed": "payload"}),
        (live, {"mirrored": "raw"}),
    ]
    known: JSON = {}
    if router.db_for_write(PushOutbox) != using:
        for qs, columns in sources:
            found = qs.values(*columns.values()).first() or {}
            known.update({name: found.get(column) for name, column in columns.items()})
        return (users.first() if fresh else user), known
    subqueries = {
        f"polar_sync_{name}": Subquery(qs.values(column)[:1])
        for qs, columns in sources
        for name, column in columns.items()
    }
    row = users.annotate(**subqueries).first()
    known = {name[len("polar_sync_") :]: getattr(row, name, None) for name in subqueries}
    return (row if fresh else user), known


def _traces(external_id: str) -> tuple[QuerySet[Any], ...]:
    """The external ID's outbox row, the payload Polar last accepted, its live customer."""
    return (
        PushOutbox.objects.filter(external_id=external_id).order_by(),
        PushedPayload.objects.filter(external_id=external_id),
        Customer.objects.filter(external_id=external_id, deleted_at__isnull=True).order_by(),
    )


def _upsert_dropped(*, external_id: str, user_id: str, known: JSON) -> bool:
    """Drop the waiting upsert of a user the filter now excludes. One that replaced a
    delete (the ID changed hands) still owes that delete: it becomes the delete."""
    if known["action"] != PushOutbox.Action.UPSERT:
        return False
    if not known["delete_first"]:
        PushOutbox.objects.filter(external_id=external_id, action=known["action"]).delete()
        return False
    _delete_record(external_id=external_id, user_id=user_id)
    return True


def _delete_record(*, external_id: str, user_id: str) -> None:
    rows.write(
        external_id=external_id,
        user_id=user_id,
        action=PushOutbox.Action.DELETE,
        payload={},
        delete_first=False,
    )
    drain_on_commit(external_id)


@functools.lru_cache(maxsize=32)
def _import(path: str, setting: str) -> Callable[[Any], Any]:
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImportError(f"POLAR_SYNC['{setting}'] = {path!r} cannot be imported: {exc}") from exc
