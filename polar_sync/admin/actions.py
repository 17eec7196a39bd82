"""Customer admin actions: thin doors onto the tasks and services that talk to Polar."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse

from .. import selectors, tasks
from ..conf import polar_settings
from ..exceptions import PolarError
from ..mapping import user_external_id
from ..models import Customer
from ..services.broker import tasks_run_inline
from ..services.push import customer_push
from ..services.remote import customer_delete_in_polar
from .base import MAX_POLAR_CALLS, MAX_ROWS_PER_ACTION, enqueue, selected


@admin.action(
    description="Refresh from Polar (customer, state and balance)", permissions=["refresh"]
)
def refresh_from_polar(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
    pks = queryset.order_by().values_list("pk", flat=True)
    sent = 0
    for pk in selected(request, pks, MAX_ROWS_PER_ACTION, "customers") or []:
        send = partial(tasks.refresh_customer.delay, str(pk))
        if not enqueue(request, send, what=f"refresh of {pk}"):
            break
        sent += 1
    if sent:
        verb = "Refreshed" if tasks_run_inline() else "Queued a refresh of"
        messages.success(request, f"{verb} {sent} customer{pluralize(sent)} from Polar.")


@admin.action(
    description="Delete in Polar (cancels subscriptions, revokes benefits)",
    permissions=["delete_in_polar"],
)
def delete_in_polar(
    modeladmin: Any, request: HttpRequest, queryset: QuerySet[Customer]
) -> HttpResponse | None:
    """Ask for confirmation, stating the consequences; on confirmation delete one by one."""
    live = queryset.filter(deleted_at__isnull=True)
    if selected(request, live.values_list("pk"), MAX_POLAR_CALLS, "customers") is None:
        return None
    targets = list(selectors.customers_for_list(live).order_by("email"))
    if not targets:
        messages.info(request, "The selected customers are already deleted in Polar.")
        return None
    if request.POST.get("post") == "yes":
        _delete(modeladmin, request, targets)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Delete these customers in Polar?",
        "opts": modeladmin.model._meta,
        "customers": targets,
        "already_deleted": queryset.count() - len(targets),
        # Prefetched by customers_for_list (to_attr), which the type of ``targets`` hides.
        "subscription_total": sum(len(c.running_subscriptions) for c in targets),  # type: ignore[attr-defined,misc]
        "benefit_total": sum(len(c.benefit_grants) for c in targets),  # type: ignore[attr-defined,misc]
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(
        request, "admin/polar_sync/customer/delete_in_polar_confirmation.html", context
    )


def _delete(modeladmin: Any, request: HttpRequest, targets: list[Customer]) -> None:
    deleted = 0
    for customer in targets:
        try:
            existed = customer_delete_in_polar(customer_id=customer.pk)
        except PolarError as exc:
            messages.error(request, f"{customer} was not deleted: {exc}")
            continue
        deleted += 1
        note = "Deleted in Polar." if existed else "Already deleted in Polar; mirror updated."
        modeladmin.log_change(request, customer, note)
    if deleted:
        messages.success(
            request,
            f"Deleted {deleted} customer{pluralize(deleted)} in Polar: their subscriptions are "
            "cancelled and their benefits revoked.",
        )


@admin.action(description="Push the linked user to Polar", permissions=["push"])
def push_to_polar(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
    """Push each selected customer's local user to Polar now, whatever was pushed before."""
    customers = selected(request, queryset.select_related("user"), MAX_POLAR_CALLS, "customers")
    if customers is None:
        return
    linked = [c for c in customers if c.user is not None]
    if unlinked := len(customers) - len(linked):
        # Pushing by external ID without a user would delete the customer in Polar.
        messages.warning(
            request,
            f"{unlinked} customer{pluralize(unlinked)} {pluralize(unlinked, 'has,have')} no "
            "local user: nothing to push for them.",
        )
    field = polar_settings().USER_EXTERNAL_ID_FIELD
    results: list[Any] = []
    for customer in linked:
        try:
            results.append(customer_push(external_id=user_external_id(customer.user, field)))
        except PolarError as exc:
            results.append(exc)
    report_pushes(request, results)


def report_pushes(request: HttpRequest, results: list[Any]) -> None:
    """One message for what was pushed, one per failure, one for why a push stopped."""
    done = [r for r in results if not isinstance(r, Exception)]
    if pushed := sum(r.pushed for r in done):
        messages.success(request, f"Pushed {pushed} change{pluralize(pushed)} to Polar.")
    if unchanged := sum(r.unchanged for r in done):
        messages.info(
            request,
            f"{unchanged} change{pluralize(unchanged)} already in Polar as last pushed: "
            "removed without a request.",
        )
    for result in results:
        if isinstance(result, Exception):
            messages.error(request, f"Push failed: {result}")
            continue
        for external_id, error in result.failed:
            messages.error(request, f"Polar refused the push of {external_id}: {error}")
        if result.postponed:
            messages.warning(
                request,
                f"{result.postponed} push(es) postponed: Polar is unavailable; they are retried "
                "with a backoff.",
            )
        if result.stopped:
            messages.warning(request, f"Push stopped: {result.stopped}")
