"""Members in the API: a customer's members (``customers/<id>/members/``) and the
caller's teams (the ``teams`` of ``me/``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.openapi import AutoSchema
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated

from ..models import Customer, Member
from .markup import MarkdownDescriptionMixin
from .permissions import api_permission_class


class MemberSerializer(serializers.ModelSerializer):
    user: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The local user's ID."
    )

    class Meta:
        model = Member
        fields = (
            "id",
            "customer_id",
            "email",
            "name",
            "external_id",
            "role",
            "created_at",
            "modified_at",
            "synced_at",
            "user",
        )
        read_only_fields = fields


class TeamSerializer(serializers.Serializer):
    """A team customer the caller is a member of."""

    customer_id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True, allow_null=True)
    role = serializers.ChoiceField(choices=Member.Role.choices, read_only=True)


class MemberCursorPagination(CursorPagination):
    """Cursor pages, as the customer list's."""

    ordering = ("created_at", "id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class CustomerMemberList(MarkdownDescriptionMixin, generics.ListAPIView):
    """The members of a customer (a team's; empty for an individual), oldest first, in
    cursor pages.

    For signed-in users who pass `API_PERMISSION_CLASS` (staff by default).
    """

    schema = AutoSchema()
    serializer_class = MemberSerializer
    pagination_class = MemberCursorPagination
    queryset = Member.objects.none()  # for the schema; get_queryset builds the real one

    def get_permissions(self) -> list[BasePermission]:
        return [IsAuthenticated(), api_permission_class()()]

    def get_queryset(self) -> QuerySet[Member]:
        pk = self.kwargs["pk"]
        if not Customer.objects.filter(pk=pk).exists():
            raise NotFound("No such customer in the mirror.")
        return Member.objects.filter(customer_id=pk)
