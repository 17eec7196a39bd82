"""The API's views: thin doors onto the selectors."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..models import Customer
from .markup import MarkdownDescriptionMixin
from .members import TeamSerializer
from .permissions import api_permission_class
from .serializers import CustomerDetailSerializer, CustomerFilterSerializer, CustomerSerializer


class CustomerCursorPagination(CursorPagination):
    """Cursor pages: stable while customers are added, and no COUNT over the whole table."""

    ordering = "-created_at"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500
    invalid_cursor_message = "Invalid cursor: use the next or previous link of a page."

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF's decoding, plus a check of the position, so that a crafted cursor is a 400
        naming ``cursor`` rather than a 404 or an error inside the query."""
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                # A position this class wrote is an aware created_at that converts to UTC.
                position = parse_datetime(str(cursor.position))
                if position is None or position.tzinfo is None:
                    raise ValueError(cursor.position)
                position.astimezone(UTC)
        except (NotFound, ValueError, OverflowError):
            raise ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            ) from None
        return cursor


class CustomerSchema(AutoSchema):
    """The list's filters are documented from the serializer that validates them."""

    def get_override_parameters(self) -> list[Any]:
        if getattr(self.view, "action", None) == "list":
            return [*super().get_override_parameters(), CustomerFilterSerializer]
        return super().get_override_parameters()


# The docstrings of views are Markdown: the browsable API and the schema show them.
class CustomerViewSet(MarkdownDescriptionMixin, viewsets.ReadOnlyModelViewSet):
    """Customers of the mirror, newest first, in cursor pages (`next` and `previous` links).

    For signed-in users who pass `API_PERMISSION_CLASS` (staff by default).
    """

    schema = CustomerSchema()
    pagination_class = CustomerCursorPagination
    filter_backends = [OrderingFilter]
    ordering_fields = ["created_at"]
    ordering = "-created_at"
    queryset = Customer.objects.none()  # for the schema; get_queryset builds the real one

    def get_permissions(self) -> list[BasePermission]:
        return [IsAuthenticated(), api_permission_class()()]

    def get_serializer_class(self) -> type[CustomerSerializer]:
        return CustomerSerializer if self.action == "list" else CustomerDetailSerializer

    def get_queryset(self) -> QuerySet[Customer]:
        if self.action == "list":
            params = CustomerFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            return selectors.customer_list(**params.selector_kwargs())
        return selectors.customer_detail_queryset()


class MeSerializer(CustomerDetailSerializer):
    """The caller's customer, and the teams they are a member of."""

    teams = TeamSerializer(many=True, read_only=True, source="polar_teams")

    class Meta(CustomerDetailSerializer.Meta):
        fields = (*CustomerDetailSerializer.Meta.fields, "teams")
        read_only_fields = fields


# Class-level, so that the schema extends this view's AutoSchema (no project setting needed).
@extend_schema(
    responses={
        200: MeSerializer,
        404: OpenApiResponse(description="The signed-in user has no Polar customer nor team."),
    }
)
class MeView(MarkdownDescriptionMixin, APIView):
    """The signed-in user's Polar customer, with its state and balance, and `teams`: the
    team customers the user is a member of (customer ID, name, role).

    A user who is only a member gets every customer field null and their teams; 404 when
    neither.
    """

    schema = AutoSchema()
    permission_classes = [IsAuthenticated]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        customer = selectors.user_customer(user=request.user)
        teams = selectors.user_teams(user=request.user)
        if customer is None and not teams:
            raise NotFound("You have no Polar customer.")
        if customer is None:
            body = dict.fromkeys(MeSerializer.Meta.fields)
            body["teams"] = TeamSerializer(teams, many=True).data
            return Response(body)
        customer.polar_teams = teams  # type: ignore[attr-defined]
        return Response(MeSerializer(customer, context={"request": request}).data)
