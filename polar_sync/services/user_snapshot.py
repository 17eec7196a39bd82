"""What a user looked like when it was loaded or last saved, as far as Polar cares.

So that the save of a user can tell, without a query, that it changed something
Polar cares about, and go straight to the outbox write. A ``save(update_fields=...)``
that leaves every watched field out (a login's ``last_login``) is known to change
nothing. Only the *watched* fields are recorded: those ``USER_PAYLOAD`` and
``USER_FILTER`` read (``USER_FIELDS``, worked out for the default payload), plus the
external ID's field. Their values are taken from the instance's ``__dict__`` when it
is built (``post_init``), never loaded on purpose, and replaced when a save that
changed them commits.

Values equal to the recorded ones do not prove that nothing changed: the row may
have changed since the instance was loaded, and a full save writes the instance's
values back over it. So the answer is then "unknown", as it is when this cannot tell
(a user built in code rather than loaded, a deferred field, unknown watched fields),
and the push service compares the payload with the database.
"""

from __future__ import annotations

import copy
import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import router, transaction

from ..conf import PolarSyncSettings, polar_settings
from ..exceptions import PolarConfigurationError

SEEN = "_polar_sync_seen"  # the key in the user instance's __dict__: values committed
WRITTEN = "_polar_sync_written"  # values saved by a transaction not yet committed
_ABSENT = object()  # a deferred field: its value was not loaded, so nothing is known
DEFAULT_FIELDS = ("email", "first_name", "last_name")  # what mapping.user_payload reads


@dataclass(frozen=True)
class Seen:
    """A save's verdict: ``changed`` is None when it cannot be told without the database."""

    changed: bool | None
    values: tuple[Any, ...] | None  # the watched values now; None when not all are loaded


UNKNOWN = Seen(changed=None, values=None)


def user_fields_watched(*, conf: PolarSyncSettings, model: type) -> tuple[str, ...] | None:
    """The watched fields' attribute names on ``model``, or None when they are not known."""
    return _watched(conf, model)


class _Reader:
    """Reads the watched values out of an instance's ``__dict__``: runs for every user
    loaded, so it is looked up by identity and reads with one C-level call."""

    __slots__ = ("attnames", "conf", "model", "read")

    def __init__(self, conf: PolarSyncSettings, model: type) -> None:
        self.conf, self.model = conf, model
        self.attnames = _watched(conf, model) if conf.PUSH_ENABLED else None
        names = self.attnames or ("",)
        self.read = operator.itemgetter(*names) if len(names) > 1 else _single(names[0])

    def __call__(self, state: dict[str, Any]) -> tuple[Any, ...]:
        try:
            return self.read(state)
        except KeyError:  # a deferred field
            return tuple([state.get(name, _ABSENT) for name in self.attnames or ()])


def _single(name: str) -> Any:
    return lambda state: (state[name],)


_reader: _Reader | None = None


def _reader_for(conf: PolarSyncSettings, model: type) -> _Reader:
    global _reader
    reader = _reader
    if reader is None or reader.conf is not conf or reader.model is not model:
        reader = _reader = _Reader(conf, model)
    return reader


@functools.lru_cache(maxsize=16)
def _watched(conf: PolarSyncSettings, model: type) -> tuple[str, ...] | None:
    names = conf.USER_FIELDS if conf.USER_FIELDS is not None else _default_fields(conf, model)
    if not names:
        return None
    attnames: list[str] = []
    for name in (*names, conf.USER_EXTERNAL_ID_FIELD):
        attname = user_field_attname(model=model, name=name)
        if attname is None:
            return None  # an external ID computed by a property, or a typo (polar_sync.E009)
        attnames.append(attname)
    return tuple(dict.fromkeys(attnames))


def user_field_attname(*, model: type, name: str) -> str | None:
    """The attribute name of a field stored in ``model``'s table, or None if it is not one."""
    opts = model._meta  # type: ignore[attr-defined]
    try:
        field = opts.pk if name == "pk" else opts.get_field(name)
    except FieldDoesNotExist:
        return None
    if not getattr(field, "concrete", False) or field.many_to_many:
        return None
    return field.attname


def _default_fields(conf: PolarSyncSettings, model: type) -> tuple[str, ...] | None:
    """The fields the default payload reads, when it is the payload and nothing filters."""
    if conf.USER_PAYLOAD != PolarSyncSettings.USER_PAYLOAD or conf.USER_FILTER:
        return None
    full_name = getattr(model, "get_full_name", None)
    # AbstractUser's get_full_name reads first_name and last_name; an override may
    # read anything.
    if getattr(full_name, "__qualname__", "") != "AbstractUser.get_full_name":
        return None
    return DEFAULT_FIELDS


def user_snapshot_take(*, user: Any) -> None:
    """Record the watched values of a user instance just built (``post_init``)."""
    try:
        conf = polar_settings()
    except PolarConfigurationError:
        return  # never fail loading a user; the save reports the settings
    reader = _reader_for(conf, type(user))
    if reader.attnames is not None:
        state = user.__dict__
        state[SEEN] = reader(state)


def user_snapshot_before_save(*, user: Any) -> None:
    """Forget what a user about to be saved looked like if it was not loaded from the
    database but built in code: its values at construction say nothing of the row's."""
    if user._state.adding:
        user.__dict__.pop(SEEN, None)
        user.__dict__.pop(WRITTEN, None)


def user_snapshot_compare(
    *, user: Any, conf: PolarSyncSettings, update_fields: Iterable[str] | None = None
) -> Seen:
    """Whether this save changed any watched field, as far as the instance can tell."""
    reader = _reader_for(conf, type(user))
    attnames = reader.attnames
    if attnames is None:
        return UNKNOWN
    state = user.__dict__
    values = reader(state)
    if _ABSENT in values:
        return UNKNOWN
    if update_fields is not None and not _writes_any(type(user), update_fields, attnames):
        # The database row's watched columns were not written, whatever the instance holds.
        return Seen(changed=False, values=None)
    seen = _known_values(state)
    if seen is None or values == seen:
        # Equal is not "unchanged": the row may have changed since the instance was
        # loaded (another request, refresh_from_db), and this save writes the old
        # values back. Only the database can tell; a difference always can.
        return Seen(changed=None, values=values)
    return Seen(changed=True, values=values)


def user_snapshot_written(*, user: Any, row: Any, conf: PolarSyncSettings) -> None:
    """This save left ``row``'s watched values in the database (``row`` is the user, or
    what :func:`user_as_saved` read after a ``save(update_fields=...)``): the next save
    of the instance compares with them.

    Until the transaction commits they are only as good as the transaction: a
    rollback (of it, or of the savepoint the save ran in) puts the database back, so
    the next save must compare with what it holds then. The values are therefore
    kept in a callback registered with ``on_commit``: while Django still holds that
    callback, the write stands; once it ran, they are what was committed; if Django
    dropped it, the write was rolled back.
    """
    written = _Written(user, _reader_for(conf, type(user))(row.__dict__))
    user.__dict__.setdefault(WRITTEN, []).append(written)
    connection = transaction.get_connection(_database(user))
    connection.on_commit(written)  # outside a transaction: runs now
    if connection.in_atomic_block:
        written.position = len(connection.run_on_commit) - 1


class _Written:
    """One save's watched values, waiting for its transaction to commit."""

    __slots__ = ("position", "user", "values")

    def __init__(self, user: Any, values: tuple[Any, ...]) -> None:
        self.user, self.values = user, values
        self.position = -1  # where on_commit put it in the connection's callbacks

    def __call__(self) -> None:
        state = self.user.__dict__
        state[SEEN] = self.values
        writes = state.get(WRITTEN) or []
        if self in writes:
            writes.remove(self)


def _database(user: Any) -> str:
    """The database the user was saved to: its transaction is the one that counts."""
    return user._state.db or router.db_for_write(type(user), instance=user)


def _last_written(writes: list[_Written]) -> _Written | None:
    """The newest of this instance's saves whose transaction may still commit."""
    connection = transaction.get_connection(_database(writes[-1].user))
    if connection.in_atomic_block:
        callbacks = connection.run_on_commit
        while writes:
            if _still_registered(callbacks, writes[-1]):
                return writes[-1]
            writes.pop()  # dropped with a rolled-back savepoint
    writes.clear()  # none is pending any more: they were rolled back
    return None


def _still_registered(callbacks: list[tuple[Any, Any, bool]], written: _Written) -> bool:
    """Whether Django still holds ``written``'s callback.

    Callbacks keep their order and a savepoint rollback only removes some, so the
    callback is at the position it was given or before it: found at once while it
    stands. Only a dropped one is searched for down to the start, once, since the
    instance then forgets its writes. (Searching every callback from the newest made
    saving many users twice in one transaction quadratic.)
    """
    for index in range(min(written.position, len(callbacks) - 1), -1, -1):
        if callbacks[index][1] is written:
            return True
    return False


def user_as_saved(
    *, user: Any, conf: PolarSyncSettings, update_fields: Iterable[str] | None
) -> Any:
    """The user as its row holds it after this save, for building the payload.

    A ``save(update_fields=...)`` leaves the other columns as they were, whatever the
    instance holds: an unsaved email must not reach Polar. The instance itself is
    returned when every watched field left out of the save still has the value it
    was loaded (or last saved) with; otherwise a copy, with the fields left out read
    from the database (one query). With the watched fields unknown, any field left
    out may be read, so all of them are.
    """
    if update_fields is None:
        return user
    model = type(user)
    opts = model._meta  # type: ignore[attr-defined]
    saved = _saved_attnames(model, update_fields)
    attnames = _reader_for(conf, model).attnames
    state = user.__dict__
    if attnames is None:
        left_out = [f.attname for f in opts.concrete_fields if f.attname not in saved]
    else:
        known = _known_values(state)
        left_out = [
            name
            for i, name in enumerate(attnames)
            if name not in saved and (known is None or state.get(name, _ABSENT) != known[i])
        ]
    left_out = [name for name in left_out if name != opts.pk.attname]
    if not left_out:
        return user
    view = copy.copy(user)  # unpickled: no post_init, no snapshot of its own
    names = {f.attname: f.name for f in opts.concrete_fields}
    view.refresh_from_db(fields=[names[name] for name in left_out])
    return view


def _known_values(state: dict[str, Any]) -> tuple[Any, ...] | None:
    """The watched values the row holds as far as the instance knows, or None."""
    writes = state.get(WRITTEN)
    if writes:
        last = _last_written(writes)
        if last is not None:
            return last.values
    seen = state.get(SEEN)
    return None if seen is None or _ABSENT in seen else seen


def _saved_attnames(model: type, update_fields: Iterable[str]) -> set[str]:
    opts = model._meta  # type: ignore[attr-defined]
    saved = set()
    for name in update_fields:
        try:
            saved.add(opts.get_field(name).attname)
        except FieldDoesNotExist:
            saved.add(name)  # Django also accepts attribute names ("team_id")
    return saved


def _writes_any(model: type, update_fields: Iterable[str], attnames: tuple[str, ...]) -> bool:
    return not _saved_attnames(model, update_fields).isdisjoint(attnames)
