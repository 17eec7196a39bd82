"""How the admin reads: live customers first, deleted marked, key / value, "none", one
date format, the Sync status entry, and links from outbox and webhook rows."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from polar_sync.models import Benefit, Customer, Product, PushOutbox, WebhookEvent
from tests.conftest import load_fixture
from tests.factories import make_customer, make_state
from tests.mirror_helpers import BENEFIT, PRODUCT, linked_customer, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:polar_sync_customer_changelist")
OUTBOX = reverse("admin:polar_sync_pushoutbox_changelist")
WEBHOOKS = reverse("admin:polar_sync_webhookevent_changelist")
STATUS = reverse("admin:polar_sync_syncrun_status")
WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def change_url(customer: Customer) -> str:
    return reverse("admin:polar_sync_customer_change", args=[customer.pk])


def rows(page: str) -> list[str]:
    return re.findall(r"<tr>.*?</tr>", page.split('id="result_list"', 1)[1], re.S)


def test_live_customers_by_default_and_deleted_marked_only_where_deleted(admin_client):
    make_customer(email="live@example.com")
    gone = make_customer(email="gone@example.com")
    Customer.objects.filter(pk=gone.pk).update(deleted_at=datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
    page = admin_client.get(CHANGELIST).text
    assert "live@example.com" in page and "gone@example.com" not in page
    assert "icon-no.svg" not in page and "icon-yes.svg" not in page  # no boolean column
    assert 'class="column-deleted' not in page
    every = admin_client.get(CHANGELIST, {"deleted": "all"}).text
    live_row, gone_row = (
        next(r for r in rows(every) if email in r) for email in ("live@", "gone@")
    )
    assert "polar-deleted" not in live_row
    assert 'class="polar-deleted" title="2026-03-04 05:06 UTC">deleted<' in gone_row
    # The filter shows "No (live)" as chosen when nothing is asked for.
    assert re.search(r'<li class="selected">\s*<a href="\?deleted=no"', page)


def test_customer_page_reads_metadata_and_address_as_key_values(admin_client):
    customer = make_customer(
        metadata={"plan": "pro", "<b>seats</b>": 3},
        billing_address={"line1": "1 Rue <Haute>", "city": "Paris", "country": "FR"},
    )
    page = admin_client.get(change_url(customer)).text
    assert '<table class="polar-kv">' in page
    assert "<tr><th scope='row'>plan</th><td>pro</td></tr>" in page
    assert "<th scope='row'>&lt;b&gt;seats&lt;/b&gt;</th><td>3</td>" in page  # escaped
    assert "<th scope='row'>city</th><td>Paris</td>" in page
    assert "1 Rue &lt;Haute&gt;" in page


def test_empty_inlines_say_none(admin_client):
    bare = make_customer()
    page = admin_client.get(change_url(bare)).text
    for sentence in (
        "None: no active subscription.",
        "None: no benefit granted.",
        "None: no active meter.",
        "None: only team customers have members.",
    ):
        assert f'<p class="polar-none">{sentence}</p>' in page
    subscribed = make_customer()
    make_state(subscribed)
    page = admin_client.get(change_url(subscribed)).text
    assert "None: no active subscription." not in page and PRODUCT in page
    assert "None: only team customers have members." in page


def test_one_date_format_on_the_list_the_page_and_the_status(admin_client):
    created = datetime(2026, 12, 2, 15, 23, 45, tzinfo=UTC)
    customer = make_customer(created_at=created.isoformat())
    make_state(customer)
    listing = admin_client.get(CHANGELIST).text
    detail = admin_client.get(change_url(customer)).text
    for page in (listing, detail):
        assert "2026-12-02 15:23 UTC" in page
        assert "a.m." not in page and "p.m." not in page  # the locale's format is gone
    row = next(r for r in rows(listing) if str(customer) in r)
    assert re.search(r'class="field-created_at_utc[^"]*">' + WHEN.pattern, row)
    # Sorting by a date column still sorts by the field.
    assert admin_client.get(CHANGELIST, {"o": "7"}).status_code == 200


def test_sync_status_is_in_the_app_list_for_those_who_may_see_it(admin_client):
    for url in (reverse("admin:index"), reverse("admin:app_list", args=["polar_sync"]), OUTBOX):
        page = admin_client.get(url).text
        assert re.search(rf'<a href="{STATUS}"[^>]*>Sync status</a>', page), url
    web = Client()
    web.force_login(make_user(staff=True, perms=("view_customer",)))
    page = web.get(reverse("admin:index")).text
    assert "Customers" in page and STATUS not in page


def test_outbox_rows_link_to_their_customer_and_user_in_constant_queries(admin_client):
    def add(n: int) -> None:
        for _ in range(n):
            user = make_user()
            linked_customer(user)
            PushOutbox.objects.update_or_create(
                external_id=str(user.pk), defaults={"action": "upsert", "user_id": str(user.pk)}
            )

    add(2)
    PushOutbox.objects.create(external_id="nobody", action="delete", user_id="999999")
    page = admin_client.get(OUTBOX).text
    user = make_user()
    customer = linked_customer(user, email="linked@example.com")
    PushOutbox.objects.update_or_create(
        external_id=str(user.pk), defaults={"action": "upsert", "user_id": str(user.pk)}
    )
    with CaptureQueriesContext(connection) as few:
        page = admin_client.get(OUTBOX).text
    row = next(r for r in rows(page) if "linked@example.com" in r)
    assert change_url(customer) in row
    assert reverse("admin:auth_user_change", args=[user.pk]) in row
    gone = next(r for r in rows(page) if "nobody" in r)
    assert "not in the mirror" in gone and "999999 <span" in gone
    add(20)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(OUTBOX).status_code == 200
    assert len(many) == len(few)


def webhook(kind: str, data: dict, customer_id: uuid.UUID | None = None) -> WebhookEvent:
    return WebhookEvent.objects.create(
        webhook_id=str(uuid.uuid4()),
        event_type=kind,
        payload={"type": kind, "timestamp": "2026-01-02T03:04:05Z", "data": data},
        customer_id=customer_id,
    )


def test_webhook_rows_link_customer_user_products_and_benefits(admin_client):
    now = timezone.now()
    Product.objects.create(id=PRODUCT, name="Pro plan", created_at=now, synced_at=now)
    Benefit.objects.create(
        id=BENEFIT, type="license_keys", description="Key", created_at=now, synced_at=now
    )
    user = make_user()
    customer = linked_customer(user, email="hooked@example.com")
    state = {**load_fixture("state"), "id": str(customer.pk)}
    webhook("customer.state_changed", state, customer.pk)
    other = str(uuid.uuid4())
    webhook("product.updated", {"id": other, "name": "Not mirrored yet"})
    with CaptureQueriesContext(connection) as few:
        page = admin_client.get(WEBHOOKS).text
    state_row = next(r for r in rows(page) if "customer.state_changed" in r)
    assert change_url(customer) in state_row
    assert reverse("admin:auth_user_change", args=[user.pk]) in state_row
    assert reverse("admin:polar_sync_product_change", args=[PRODUCT]) in state_row
    assert "Pro plan" in state_row and "Key (" in state_row
    product_row = next(r for r in rows(page) if "product.updated" in r)
    assert "Not mirrored yet" in product_row
    for _ in range(10):
        webhook("customer.state_changed", state, customer.pk)
        webhook("customer.updated", {"id": str(uuid.uuid4())}, uuid.uuid4())
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(WEBHOOKS).status_code == 200
    assert len(many) == len(few)
    event = WebhookEvent.objects.filter(event_type="customer.state_changed").first()
    detail = admin_client.get(reverse("admin:polar_sync_webhookevent_change", args=[event.pk]))
    assert change_url(customer) in detail.text and "Pro plan" in detail.text
