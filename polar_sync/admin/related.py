"""Links from outbox rows and webhook deliveries to their customer, user, product or benefit.

Those rows keep plain IDs, not foreign keys (a delete outlives its user; a
webhook may come before its customer), so the admin looks the objects up itself:
once per changelist page (one query per kind of object, whatever the page's
size), or once for the one row of a change page.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest
from django.utils.html import format_html

from ..models import Benefit, Customer, Product
from .base import admin_link

ATTR = "_polar_related"  # on each row: {"customer": ..., "user": ..., "subject": ...}


def users_by_pk(ids: Iterable[Any]) -> dict[str, Model]:
    """Local users by ``str(pk)``, in one query; IDs that cannot be a pk are skipped."""
    user_model = get_user_model()
    pks = set()
    for value in ids:
        try:
            pks.add(user_model._meta.pk.to_python(value))
        except ValidationError:
            continue
    if not pks:
        return {}
    return {str(user.pk): user for user in user_model._default_manager.filter(pk__in=pks)}


def customers_by(field: str, ids: Iterable[Any]) -> dict[str, Customer]:
    """Mirrored customers by ``str(<field>)``, their users joined, in one query."""
    wanted = {value for value in ids if value}
    if not wanted:
        return {}
    rows = (
        Customer.objects.filter(**{f"{field}__in": wanted})
        .select_related("user")
        .only("id", "email", "name", "external_id", "deleted_at", "user")
    )
    return {str(getattr(row, field)): row for row in rows}


def catalog_by_pk(model: type[Product] | type[Benefit], ids: Iterable[Any]) -> dict[str, Model]:
    wanted = {value for value in ids if value}
    if not wanted:
        return {}
    return {str(row.pk): row for row in model.objects.filter(pk__in=wanted)}


class RelatedChangeList(ChangeList):
    """A changelist whose admin attaches each page's related objects to its rows."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        rows = list(self.result_list)  # fills the page's cache: rendering reuses these rows
        self.model_admin.attach_related(rows)  # type: ignore[attr-defined]


def related(admin: Any, obj: Model) -> dict[str, Any]:
    """What ``admin.attach_related`` found for ``obj`` (looked up now on a change page)."""
    if not hasattr(obj, ATTR):
        admin.attach_related([obj])
    return getattr(obj, ATTR)


def user_link(user: Model | None, user_id: Any) -> str:
    if user is not None:
        return admin_link(user)
    if user_id:
        return format_html('{} <span class="polar-sub">(no such user)</span>', user_id)
    return "-"


def customer_link(customer: Customer | None, *, known_as: Any = None) -> str:
    if customer is not None:
        return admin_link(customer)
    if known_as:
        return format_html('<span title="{}">not in the mirror</span>', known_as)
    return "-"


def named_link(obj: Model | None, name: str, pk: Any) -> str:
    """A link to a product or benefit, by the mirror's name, else by ``name`` from the payload."""
    if obj is not None:
        return admin_link(obj)
    return name or str(pk) if pk else "-"


def as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


Mentions = list[tuple[Any, str]]  # (ID, the payload's name for it or "")


def catalog_mentioned(payload: Any) -> tuple[Mentions, Mentions]:
    """The products and benefits a webhook payload is about: its data for a ``product.*``
    or ``benefit.*`` event, the subscriptions' products and the granted benefits of a
    customer's state."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return [], []
    kind = str(payload.get("type", ""))
    if kind.startswith("product."):
        return [(data.get("id"), str(data.get("name") or ""))], []
    if kind.startswith("benefit."):
        return [], [(data.get("id"), str(data.get("description") or ""))]
    products = [
        (sub.get("product_id"), "")
        for sub in data.get("active_subscriptions") or []
        if isinstance(sub, dict) and as_uuid(sub.get("product_id"))
    ]
    benefits = [
        (grant.get("benefit_id"), "")
        for grant in data.get("granted_benefits") or []
        if isinstance(grant, dict) and as_uuid(grant.get("benefit_id"))
    ]
    return products, benefits
