"""The admin at 1280 x 800 in Chromium: the customer list fits (no horizontal scroll),
and three screenshots are saved under ``artifacts/``: the list, a customer, the status.

Same requirements and skip rules as ``tests/test_browser.py``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from polar_sync.models import Customer, PushOutbox, SyncRun
from tests.factories import make_balance, make_customer, make_state
from tests.mirror_helpers import linked_customer, make_user

# pytestmark and the autouse fixture: the same skip, or failure when CI requires a browser.
from tests.test_browser import (  # noqa: F401
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    _browser_available,
    pytestmark,
)

VIEWPORT = {"width": 1280, "height": 800}
# The page, then the table's own box (Django lets .results scroll sideways on its own).
OVERFLOW = """[document.documentElement, document.querySelector('#changelist .results')]
    .map(e => [e.scrollWidth, e.clientWidth])"""


@pytest.fixture
def crowded(settings, django_user_model):
    """A page of customers with long emails, names and external IDs; one deleted."""
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "PUSH_ENABLED": False}
    django_user_model.objects.create_superuser("operator", "op@example.com", PASSWORD)
    user = make_user()
    ada = linked_customer(
        user,
        email="ada.lovelace.countess.of.lovelace@analytical-engine.example.com",
        name="Augusta Ada King, Countess of Lovelace",
        metadata={"plan": "pro", "seats": 3, "source": "conference 2026"},
        billing_address={"line1": "12 St James's Square", "city": "London", "country": "GB"},
    )
    make_state(ada)
    make_balance(ada, cents=-150)
    for n in range(30):
        make_customer(
            email=f"customer-number-{n:03d}-with-a-long-address@subdomain.example.org",
            name=f"Customer {n} with a fairly long company name Ltd",
            external_id=f"external-{n:03d}-0f8fad5b-d9cb-469f-a165-70867728950e",
        )
    gone = make_customer(email="gone@example.com", name="Deleted Customer")
    Customer.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    now = timezone.now()
    SyncRun.objects.create(
        kind="customers",
        status="succeeded",
        started_at=now - timedelta(minutes=3),
        heartbeat_at=now,
        finished_at=now - timedelta(minutes=2),
        pages=1,
        created=32,
    )
    PushOutbox.objects.create(external_id=str(user.pk), action="upsert", user_id=str(user.pk))
    return ada


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_admin_fits_1280_px_and_is_photographed(crowded, live_server, capsys):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "changelist": ARTIFACTS / "admin-changelist-1280.png",
        "customer": ARTIFACTS / "admin-customer-1280.png",
        "status": ARTIFACTS / "admin-sync-status-1280.png",
    }
    customer_url = reverse("admin:polar_sync_customer_change", args=[crowded.pk])
    status_url = reverse("admin:polar_sync_syncrun_status")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/polar_sync/customer/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            result = page.locator("#result_list")
            expect(result).to_contain_text("ada.lovelace.countess")
            expect(result).not_to_contain_text("gone@example.com")  # live by default
            widths = page.evaluate(OVERFLOW)
            page.screenshot(path=str(shots["changelist"]))
            for scroll_width, client_width in widths:  # no horizontal overflow, nor scrollbar
                assert scroll_width <= client_width, widths
            # The sidebar lists the status page.
            expect(
                page.locator("#nav-sidebar").get_by_role("link", name="Sync status")
            ).to_be_visible()

            page.goto(f"{live_server.url}{customer_url}")
            expect(
                page.locator("#active_meters-group, #active_subscriptions-group").first
            ).to_be_visible()
            expect(page.locator("#members-group")).to_contain_text("None: only team customers")
            expect(page.locator("table.polar-kv", has_text="conference 2026")).to_be_visible()
            page.screenshot(path=str(shots["customer"]), full_page=True)

            page.goto(f"{live_server.url}{status_url}")
            expect(page.locator("#polar-sync-status")).to_contain_text("UTC")
            page.screenshot(path=str(shots["status"]), full_page=True)
        finally:
            browser.close()
    for shot in shots.values():
        assert shot.stat().st_size > 10_000, shot
    with capsys.disabled():
        print(f"\n1280 px screenshots: {', '.join(str(s) for s in shots.values())}")
