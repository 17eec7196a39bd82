"""CSV downloads from the admin: the selection, and Polar's own export streamed through.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
gets a leading ``'``, so a spreadsheet shows it instead of running it as a formula.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from ..models import Customer
from ..selectors import customers_for_list, related_or_none

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

SELECTION_HEADER = [
    "ID",
    "External ID",
    "Email",
    "Email verified",
    "Name",
    "Type",
    "Billing name",
    "Locale",
    "Default payment method ID",
    "First user event at",
    "Billing country",
    "Created at",
    "Modified at",
    "Deleted at",
    "Synced at",
    "Local user ID",
    "Active subscriptions",
    "Product IDs",
    "Product names",
    "Benefit grants",
    "Benefit names",
    "Balance (cents)",
    "Balance currency",
    "State synced at",
]


def csv_safe(value: Any) -> Any:
    """``value`` ready for a CSV cell: text that a spreadsheet would run gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool | int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like that hands back what the csv writer writes (Django's streaming CSV recipe)."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterable[Iterable[Any]]) -> Iterator[bytes]:
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    for row in rows:
        yield writer.writerow([csv_safe(cell) for cell in row]).encode()


def csv_safe_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Re-write a UTF-8 CSV byte stream with every cell made safe, without holding it in memory."""
    return _csv_lines(csv.reader(_text_lines(chunks)))


def _text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines, each with its ``\\n``, as csv.reader wants them (quoted newlines too)."""
    pending = ""
    for text in codecs.iterdecode(chunks, "utf-8", errors="replace"):
        *lines, pending = (pending + text).split("\n")
        for line in lines:
            yield line + "\n"
    if pending:
        yield pending


def customer_rows(queryset: QuerySet[Customer]) -> Iterator[list[Any]]:
    """The selection's CSV rows, header first, read in chunks of a constant number of queries."""
    yield SELECTION_HEADER
    rows = customers_for_list(queryset).order_by("created_at", "id")
    for customer in rows.iterator(chunk_size=1000):
        subscriptions = customer.running_subscriptions  # type: ignore[attr-defined]
        state = related_or_none(customer, "state")
        balance = related_or_none(customer, "balance")
        yield [
            str(customer.pk),
            customer.external_id,
            customer.email,
            customer.email_verified,
            customer.name,
            customer.type,
            customer.billing_name,
            customer.locale,
            customer.default_payment_method_id,
            customer.first_user_event_at,
            customer.billing_country,
            customer.created_at,
            customer.modified_at,
            customer.deleted_at,
            customer.synced_at,
            customer.user_id,
            len(subscriptions),
            ";".join(sorted({str(s.product_id) for s in subscriptions})),
            _names(subscriptions, "product_name"),
            len(customer.benefit_grants),  # type: ignore[attr-defined]
            _names(customer.benefit_grants, "benefit_name"),  # type: ignore[attr-defined]
            balance.balance if balance else None,
            balance.currency if balance else None,
            state.synced_at if state else None,
        ]


def _names(rows: Iterable[Any], attr: str) -> str:
    """The known names (``Name`` of "Name (id)") of the rows, sorted, ``;``-separated."""
    return ";".join(sorted({name for row in rows if (name := getattr(row, attr, None))}))


def csv_response(lines: Iterable[bytes], *, stem: str) -> StreamingHttpResponse:
    """A streamed CSV download named ``<stem>-<UTC timestamp>.csv``."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{stem}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"  # customer data: keep it out of shared caches
    return response


@admin.action(description="Export the selection to CSV", permissions=["view"])
def export_csv(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Customer]
) -> StreamingHttpResponse:
    return csv_response(_csv_lines(customer_rows(queryset)), stem="polar-customers-selection")
