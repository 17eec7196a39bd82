"""How the mirror looks in the API; read-only throughout (the mirror belongs to Polar)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import selectors
from ..models import Customer, CustomerBalance, StateBenefitGrant, StateMeter, StateSubscription


class CustomerFilterSerializer(serializers.Serializer):
    """The query parameters of ``customers/``; a bad value is a 400 naming the parameter."""

    email = serializers.CharField(required=False, help_text="Exact email, case-insensitive.")
    external_id = serializers.CharField(required=False, help_text="Exact external ID.")
    active_subscription = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text="Has an active subscription."
    )
    product = serializers.UUIDField(
        source="product_id",
        required=False,
        help_text="Has an active subscription to this Polar product.",
    )
    benefit = serializers.UUIDField(
        source="benefit_id", required=False, help_text="Holds this Polar benefit."
    )
    deleted = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Deleted in Polar: false (the default) lists live customers, true deleted ones.",
    )
    ordering = serializers.ChoiceField(
        choices=("created_at", "-created_at"),
        required=False,
        help_text="created_at or -created_at (the default).",
    )
    cursor = serializers.CharField(required=False, help_text="The page to fetch (from next).")
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=500)

    def selector_kwargs(self) -> dict[str, Any]:
        """The filters, named as ``selectors.customer_list`` names them (``source``)."""
        paging = ("ordering", "cursor", "page_size")
        return {k: v for k, v in self.validated_data.items() if k not in paging}


class BalanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomerBalance
        fields = ("balance", "currency", "synced_at")
        read_only_fields = fields


@extend_schema_field({"type": "string", "nullable": True})
class CatalogNameField(serializers.Field):
    """A product's or benefit's name from the mirror's catalogue (an annotation of the
    row's query: see :mod:`polar_sync.catalog_selectors`); null when unknown."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance: Any) -> Any:
        return getattr(instance, str(self.source), None)

    def to_representation(self, value: Any) -> str | None:
        return value


class SubscriptionSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="subscription_id", read_only=True)
    product_name = CatalogNameField(help_text="The product's name; null when unknown.")

    class Meta:
        model = StateSubscription
        fields = (
            "id",
            "product_id",
            "product_name",
            "status",
            "amount",
            "currency",
            "recurring_interval",
            "current_period_start",
            "current_period_end",
            "trial_start",
            "trial_end",
            "cancel_at_period_end",
            "canceled_at",
            "started_at",
            "ends_at",
            "discount_id",
            "metadata",
            "meters",
            "seats",
            "units",
        )
        read_only_fields = fields


class BenefitGrantSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="grant_id", read_only=True)
    benefit_name = CatalogNameField(help_text="The benefit's name; null when unknown.")

    class Meta:
        model = StateBenefitGrant
        fields = (
            "id",
            "benefit_id",
            "benefit_name",
            "benefit_type",
            "granted_at",
            "benefit_metadata",
            "properties",
        )
        read_only_fields = fields


@extend_schema_field({"type": "number"})
class UnitsField(serializers.Field):
    """A meter quantity as Polar sends it: a whole number as an integer, else a float."""

    def to_representation(self, value: Decimal) -> int | float:
        return int(value) if value == value.to_integral_value() else float(value)


class MeterSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="customer_meter_id", read_only=True)
    consumed_units = UnitsField(read_only=True)
    balance = UnitsField(read_only=True)

    class Meta:
        model = StateMeter
        fields = ("id", "meter_id", "consumed_units", "credited_units", "balance")
        read_only_fields = fields


class StateSerializer(serializers.Serializer):
    """A customer's state as last fetched from Polar (serialized from the customer)."""

    synced_at = serializers.DateTimeField(source="state.synced_at", read_only=True)
    active_subscriptions = SubscriptionSerializer(many=True, read_only=True)
    granted_benefits = BenefitGrantSerializer(many=True, read_only=True)
    active_meters = MeterSerializer(many=True, read_only=True)


class CustomerSerializer(serializers.ModelSerializer):
    """A customer in a list: its own fields, whether it subscribes, its balance."""

    user: serializers.PrimaryKeyRelatedField[Any] = serializers.PrimaryKeyRelatedField(
        read_only=True, help_text="The local user's ID."
    )
    has_active_subscription = serializers.BooleanField(read_only=True)
    state_synced_at = serializers.DateTimeField(
        source="state.synced_at", read_only=True, allow_null=True
    )
    balance = BalanceSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Customer
        fields: tuple[str, ...] = (
            "id",
            "external_id",
            "type",
            "email",
            "email_verified",
            "name",
            "billing_name",
            "locale",
            "billing_country",
            "first_user_event_at",
            "created_at",
            "modified_at",
            "deleted_at",
            "synced_at",
            "user",
            "has_active_subscription",
            "state_synced_at",
            "balance",
        )
        read_only_fields: tuple[str, ...] = fields


class CustomerDetailSerializer(CustomerSerializer):
    """A customer with its state (null until first fetched) and balance."""

    state = serializers.SerializerMethodField()

    class Meta(CustomerSerializer.Meta):
        fields = (
            *CustomerSerializer.Meta.fields,
            "organization_id",
            "billing_address",
            "tax_id",
            "default_payment_method_id",
            "metadata",
            "state",
        )
        read_only_fields = fields

    @extend_schema_field(StateSerializer(allow_null=True))
    def get_state(self, customer: Customer) -> dict[str, Any] | None:
        if selectors.related_or_none(customer, "state") is None:
            return None
        return StateSerializer(customer, context=self.context).data
