"""Team members and seats of the 2026 versions: the API operations and the test handle.

A **team** customer has members (``Member`` JSON: ``id``, ``customer_id``, ``email``,
``name``, ``external_id`` unique within the customer, ``role`` owner | billing_manager |
member); an individual customer has none (seats are in :mod:`.seats`). Mixed into
:class:`~polar_sync.testing.store.PolarStore`; every change is announced as Polar's
``member.*`` / ``customer_seat.*`` webhook events.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from . import versions as v
from .internals import Event, StoreInternals
from .records import CustomerRecord, NotFound, iso, now_us, uuid4_from
from .validation import ValidationFailed, error

HOUR_US = 3_600_000_000
ROLES: tuple[str, ...] = ("owner", "billing_manager", "member")
_UNSET: Any = object()


class NotPermitted(Exception):
    """Polar's 403 ``NotPermitted`` (e.g. members for an individual customer)."""


def member_dict(
    *,
    id: str,
    customer_id: str,
    email: str,
    name: str | None,
    external_id: str | None,
    role: str,
    created_us: int,
    modified_us: int | None = None,
) -> dict[str, Any]:
    return {
        "id": id,
        "created_at": iso(created_us),
        "modified_at": iso(modified_us),
        "customer_id": customer_id,
        "email": email,
        "name": name,
        "external_id": external_id,
        "role": role,
    }


def seed_teams(
    records: list[CustomerRecord], seed: int
) -> list[dict[str, Any]]:  # a pure function of its arguments, like seed_records
    """Turn about one seeded customer in ten (at least two) into a team with 2 to 6 members
    (an owner, maybe a billing manager, members); returns the members, oldest first.

    Its own RNG: the records' other fields stay exactly those of ``seed_records``.
    """
    n = len(records)
    if n < 2:
        return []
    rng = random.Random(f"teams-{seed}")
    chosen = sorted(rng.sample(range(n), min(n, max(2, n // 10))))
    members: list[dict[str, Any]] = []
    for index in chosen:
        record = records[index]
        person, email, external_id = record.name, record.email, record.external_id
        company = f"{(person or 'Acme').split()[-1]} & Co"
        domain = email.rpartition("@")[2] if email else "example.com"
        record.name = company
        record.external_id = f"team_{record.seq:07d}" if external_id else None
        if rng.random() < 0.25:  # a team may have no email of its own
            record.email = None
        record.extra = {
            **v.EXTRA_DEFAULTS,
            "type": "team",
            "billing_name": f"{company} Ltd",
            "locale": rng.choice(("en", "en-GB", "de", "fr")),
            "first_user_event_us": record.created_us + rng.randint(1, 9) * HOUR_US,
        }
        created = record.created_us
        owner_email = email or f"owner-{record.seq}@{domain}"
        members.append(
            member_dict(
                id=uuid4_from(rng),
                customer_id=record.id,
                email=owner_email,
                name=person,
                external_id=external_id,
                role="owner",
                created_us=created,
            )
        )
        for j in range(1, rng.randint(2, 6)):
            role = "billing_manager" if j == 1 and rng.random() < 0.5 else "member"
            members.append(
                member_dict(
                    id=uuid4_from(rng),
                    customer_id=record.id,
                    email=f"member{j}.{record.seq}@{domain}",
                    name=f"Member {j} of {company}",
                    external_id=f"usr_{record.seq:07d}_{j}",
                    role=role,
                    created_us=created + j * 60_000_000,
                )
            )
    return members


class MembersMixin:
    """Members and seats of the store (the API side and the test handle)."""

    # -- internals ---------------------------------------------------------------------

    def _team(self: StoreInternals, record: CustomerRecord) -> None:
        if v.fields_of(record)["type"] != "team":
            raise NotPermitted("Only team customers can have members.")

    def _members_of(self: StoreInternals, customer_id: str) -> list[dict[str, Any]]:
        return [m for m in self._members.values() if m["customer_id"] == customer_id]

    def _member(
        self: StoreInternals,
        record: CustomerRecord,
        *,
        id: str | None = None,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        for member in self._members_of(record.id):
            if (id is not None and member["id"] == id) or (
                external_id is not None and member["external_id"] == external_id
            ):
                return member
        raise NotFound(id or external_id)

    def _member_clash(
        self: StoreInternals,
        record: CustomerRecord,
        fields: dict[str, Any],
        skip: str | None = None,
    ) -> None:
        errors = []
        for other in self._members_of(record.id):
            if other["id"] == skip:
                continue
            if fields.get("email") and other["email"].lower() == fields["email"].lower():
                msg = "A member with this email already exists for this customer."
                errors.append(error(["body", "email"], msg, "value_error", fields["email"]))
            if fields.get("external_id") and other["external_id"] == fields["external_id"]:
                msg = "A member with this external ID already exists for this customer."
                errors.append(
                    error(["body", "external_id"], msg, "value_error", fields["external_id"])
                )
        if errors:
            raise ValidationFailed(errors)

    def _add_member(
        self: StoreInternals, record: CustomerRecord, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Event]]:
        self._member_clash(record, fields)
        member = member_dict(
            id=str(uuid.uuid4()),
            customer_id=record.id,
            email=fields["email"],
            name=fields.get("name"),
            external_id=fields.get("external_id"),
            role=fields.get("role") or "member",
            created_us=now_us(),
        )
        self._members[member["id"]] = member
        return member, self._member_events("member.created", member)

    def _change_member(
        self: StoreInternals, member: dict[str, Any], fields: dict[str, Any]
    ) -> list[Event]:
        changes = {k: value for k, value in fields.items() if member[k] != value}
        if not changes:
            return []
        self._member_clash(self._by_id[member["customer_id"]], changes, skip=member["id"])
        member.update(changes, modified_at=iso(now_us()))
        return self._member_events("member.updated", member)

    def _remove_member(self: StoreInternals, member: dict[str, Any]) -> list[Event]:
        del self._members[member["id"]]
        return self._member_events("member.deleted", member)

    def _drop_members(self: StoreInternals, record: CustomerRecord) -> list[Event]:
        events: list[Event] = []
        for member in self._members_of(record.id):
            events += self._remove_member(member)
        return events

    def _member_events(self: StoreInternals, event_type: str, data: dict[str, Any]) -> list[Event]:
        if not self.subscribers or not v.dated(self.api_version):
            return []
        return [(event_type, dict(data))]

    def _customer(self: StoreInternals, id: str | None, external_id: str | None) -> CustomerRecord:
        return self._live(id) if id is not None else self._live_external(external_id or "")

    # -- API operations ---------------------------------------------------------------------

    def api_members(self: StoreInternals, query: dict[str, Any]) -> dict[str, Any]:
        """``ListResource[Member]`` for validated filters (see inputs.member_list_query)."""
        with self.lock:
            rows = list(self._members.values())
            if query["customer_id"] is not None:
                rows = [m for m in rows if m["customer_id"] == query["customer_id"]]
            if query["external_customer_id"] is not None:
                record = self._by_external.get(query["external_customer_id"])
                rows = [m for m in rows if record is not None and m["customer_id"] == record.id]
            if query["role"] is not None:
                rows = [m for m in rows if m["role"] == query["role"]]
            if query["descending"]:
                rows.reverse()
            return page_of([dict(m) for m in rows], query["page"], query["limit"])

    def api_member_create(
        self: StoreInternals,
        fields: dict[str, Any],
        *,
        id: str | None = None,
        external_id: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            record = self._customer(id, external_id)
            self._team(record)
            member, events = self._add_member(record, fields)
        self._dispatch(events)
        return dict(member)

    def api_member(
        self: StoreInternals,
        *,
        id: str | None = None,
        external_id: str | None = None,
        member_id: str | None = None,
        member_external_id: str | None = None,
        fields: dict[str, Any] | None = None,
        delete: bool = False,
    ) -> dict[str, Any]:
        """Get, update (``fields``) or delete one member of a live customer."""
        with self.lock:
            record = self._customer(id, external_id)
            member = self._member(record, id=member_id, external_id=member_external_id)
            events: list[Event] = []
            if delete:
                events = self._remove_member(member)
            elif fields:
                events = self._change_member(member, fields)
            result = dict(member)
        self._dispatch(events)
        return result

    # -- the test handle --------------------------------------------------------------------

    def add_member(
        self: StoreInternals,
        customer_id: str,
        *,
        email: str | None = None,
        name: str | None = None,
        external_id: str | None = None,
        role: str = "member",
    ) -> dict[str, Any]:
        """Add a member to a team customer (``customer_id`` turns into a team if needed)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        with self.lock:
            record = self._live(customer_id)
            events: list[Event] = []
            if v.fields_of(record)["type"] != "team" and self._assign(record, {"type": "team"}):
                events += self._events(record, "customer.updated")
            email = email or f"member-{len(self._members) + 1}@example.com"
            fields = {"email": email, "name": name, "external_id": external_id, "role": role}
            member, more = self._add_member(record, fields)
            result = dict(member)
        self._dispatch(events + more)
        return result

    def update_member(self: StoreInternals, member_id: str, **fields: Any) -> dict[str, Any]:
        """Set ``email``, ``name``, ``external_id`` or ``role`` of a member."""
        unknown = set(fields) - {"email", "name", "external_id", "role"}
        if unknown:
            raise TypeError(f"unknown member fields: {sorted(unknown)}")
        with self.lock:
            member = self._members.get(member_id)
            if member is None:
                raise NotFound(member_id)
            events = self._change_member(member, fields)
            result = dict(member)
        self._dispatch(events)
        return result

    def delete_member(self: StoreInternals, member_id: str) -> None:
        with self.lock:
            member = self._members.get(member_id)
            if member is None:
                raise NotFound(member_id)
            events = self._remove_member(member)
        self._dispatch(events)

    def members(self: StoreInternals, customer_id: str | None = None) -> list[dict[str, Any]]:
        """Every member (of one customer if given), oldest first."""
        with self.lock:
            rows = self._members.values()
            return [dict(m) for m in rows if customer_id in (None, m["customer_id"])]


def page_of(items: list[Any], page: int, limit: int) -> dict[str, Any]:
    """One page of a ``ListResource`` over ``items``."""
    total = len(items)
    return {
        "items": items[(page - 1) * limit : page * limit],
        "pagination": {"total_count": total, "max_page": -(-total // limit)},
    }
