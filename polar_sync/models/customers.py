"""The local mirror of Polar's customers, their states and their balances.

Columns mirror what people filter, sort, join or display; ``raw`` keeps the whole
payload. Rows are written by the services, not edited by hand.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper


class CustomerQuerySet(models.QuerySet["Customer"]):
    def active(self) -> CustomerQuerySet:
        return self.filter(deleted_at__isnull=True)

    def deleted(self) -> CustomerQuerySet:
        return self.filter(deleted_at__isnull=False)

    def with_benefit(self, benefit_id: str) -> CustomerQuerySet:
        return self.filter(granted_benefits__benefit_id=benefit_id).distinct()

    def with_active_subscription(self, product_id: str | None = None) -> CustomerQuerySet:
        if product_id is None:
            return self.filter(active_subscriptions__isnull=False).distinct()
        return self.filter(active_subscriptions__product_id=product_id).distinct()


class Customer(models.Model):
    """A Polar customer. The primary key is Polar's own customer ID."""

    class Type(models.TextChoices):
        INDIVIDUAL = "individual", "Individual"
        TEAM = "team", "Team"

    id = models.UUIDField(primary_key=True, help_text="Polar's customer ID.")
    # null, not "": the unique constraint must allow many customers without one.
    external_id = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        help_text="The customer's ID in this system; unique when set, immutable in Polar.",
    )
    # Nullable: a team customer on newer API versions may have no email.
    email = models.CharField(max_length=320, null=True, blank=True)  # noqa: DJ001
    email_verified = models.BooleanField(default=False)
    name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001  (Polar's null)
    billing_address = models.JSONField(null=True, blank=True)
    billing_country = models.CharField(max_length=2, blank=True, default="")
    tax_id = models.JSONField(null=True, blank=True, help_text="[value, format] or null.")
    metadata = models.JSONField(default=dict, blank=True)
    organization_id = models.UUIDField(null=True, blank=True, db_index=True)
    avatar_url = models.TextField(blank=True, default="")
    # 2026 API versions; null from a server of the 2025-10 era, which has no such fields.
    type = models.CharField(  # noqa: DJ001  (null: not sent)
        max_length=16, choices=Type.choices, null=True, blank=True
    )
    billing_name = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    locale = models.CharField(max_length=16, null=True, blank=True)  # noqa: DJ001
    default_payment_method_id = models.UUIDField(null=True, blank=True)
    first_user_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(help_text="When Polar created the customer.")
    modified_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(default=dict, help_text="The whole payload, as Polar sent it.")
    synced_at = models.DateTimeField(help_text="When this row was last written from Polar.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="polar_customers",
        help_text="The local user whose external ID this customer carries.",
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="polar_sync_customer_external_id_unique",
            )
        ]
        # Not db_index=True: on PostgreSQL that adds a varchar_pattern_ops index to a
        # CharField, for LIKE 'prefix%' that nothing runs, and each index slows a pull.
        indexes = [
            models.Index(fields=["created_at"], name="polar_sync_customer_created"),
            # The usual listing (live customers by date); also serves deleted_at alone.
            models.Index(fields=["deleted_at", "created_at"], name="polar_sync_customer_live"),
            # email__iexact (the API's ?email=) compares UPPER(email) on PostgreSQL.
            models.Index(Upper("email"), name="polar_sync_customer_email_ci"),
            models.Index(fields=["billing_country"], name="polar_sync_customer_country"),
        ]

    def __str__(self) -> str:
        return self.email or self.name or str(self.id)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class CustomerState(models.Model):
    """When a customer's state was last fetched; its rows hang off the customer."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="state"
    )
    raw = models.JSONField(default=dict, help_text="The whole CustomerState payload.")
    synced_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"State of {self.customer_id}"


class StateSubscription(models.Model):
    """One of a customer's active subscriptions (``CustomerStateSubscription``)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="active_subscriptions"
    )
    subscription_id = models.UUIDField(help_text="Polar's subscription ID.")
    product_id = models.UUIDField()
    status = models.CharField(max_length=32)
    amount = models.BigIntegerField(help_text="In the currency's smallest unit.")
    currency = models.CharField(max_length=8)
    recurring_interval = models.CharField(max_length=16)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField(null=True, blank=True)
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    discount_id = models.UUIDField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    custom_field_data = models.JSONField(default=dict, blank=True)
    meters = models.JSONField(
        default=list, blank=True, help_text="CustomerStateSubscriptionMeter list."
    )
    # Seat- or unit-based subscriptions (Polar's newer states); null otherwise.
    seats = models.IntegerField(null=True, blank=True)
    units = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    modified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("current_period_start",)
        indexes = [
            models.Index(fields=["product_id", "customer"], name="polar_sync_sub_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} ({self.status})"


class StateBenefitGrant(models.Model):
    """One of a customer's granted benefits (``CustomerStateBenefitGrant``)."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="granted_benefits"
    )
    grant_id = models.UUIDField(help_text="Polar's benefit grant ID.")
    benefit_id = models.UUIDField()
    benefit_type = models.CharField(max_length=32, db_index=True)
    benefit_metadata = models.JSONField(default=dict, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    granted_at = models.DateTimeField()
    created_at = models.DateTimeField()
    modified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("granted_at",)
        indexes = [
            models.Index(fields=["benefit_id", "customer"], name="polar_sync_grant_benefit"),
        ]

    def __str__(self) -> str:
        return f"{self.benefit_type} {self.benefit_id}"


UNITS_DIGITS, UNITS_PLACES = 40, 12


def units_text(value: Decimal | float) -> str:
    """A meter quantity as Polar writes it: ``25``, ``2.5`` (no trailing zeros)."""
    return f"{Decimal(str(value)).normalize():f}"


class StateMeter(models.Model):
    """One of a customer's active meters (``CustomerStateMeter``)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="active_meters")
    customer_meter_id = models.UUIDField(help_text="Polar's customer meter ID.")
    meter_id = models.UUIDField(db_index=True)
    # Exact decimals, not floats: Polar's whole numbers stay whole (25, not 25.0).
    consumed_units = models.DecimalField(max_digits=UNITS_DIGITS, decimal_places=UNITS_PLACES)
    credited_units = models.BigIntegerField()
    balance = models.DecimalField(max_digits=UNITS_DIGITS, decimal_places=UNITS_PLACES)
    created_at = models.DateTimeField()
    modified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("meter_id",)

    def __str__(self) -> str:
        return f"meter {self.meter_id}: {units_text(self.balance)}"


class CustomerBalance(models.Model):
    """A customer's balance: in cents, positive means credit."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="balance"
    )
    balance = models.BigIntegerField(help_text="In cents; positive is a credit.")
    currency = models.CharField(max_length=8)
    synced_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.balance / 100:.2f} {self.currency.upper()}"
