"""Members of team customers in the admin: read-only, searchable, and inline on the
customer's page."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import Member
from .base import ReadOnlyAdmin, ReadOnlyInline, admin_link, field_display, pretty_json


class MemberInline(ReadOnlyInline):
    model = Member
    verbose_name_plural = "members (team customers)"
    empty_text = "None: only team customers have members."
    fields = readonly_fields = (
        "email",
        "name",
        "external_id",
        "role",
        "linked_user",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return super().get_queryset(request).select_related("user")

    @admin.display(description="user")
    def linked_user(self, obj: Member) -> str:
        return admin_link(obj.user)


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("email", "name", "external_id", "role", "team", "linked_user", "created_at")
    list_filter = ("role",)
    search_fields = ("email", "name", "external_id")
    search_help_text = "Email, name or external ID (contains)."
    list_select_related = ("customer", "user")
    list_per_page = 100
    ordering = ("-created_at",)
    fields = readonly_fields = (
        "id",
        "team",
        "email",
        "name",
        "external_id",
        "role",
        "linked_user",
        "created_at",
        "modified_at",
        "synced_at",
        "raw_pretty",
    )
    raw_pretty = field_display("raw", "member payload", pretty_json)

    @admin.display(description="team", ordering="customer__name")
    def team(self, obj: Member) -> str:
        return admin_link(obj.customer)

    @admin.display(description="user", ordering="user")
    def linked_user(self, obj: Member) -> str:
        return admin_link(obj.user)
