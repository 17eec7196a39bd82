"""The admin in a real browser: Playwright driving Debian's Chromium, headless.

An operator logs in, searches a customer by email, opens it, sees its
subscriptions, refreshes it from (the local) Polar and sees the success
message and the new subscription. A screenshot is saved under ``artifacts/``.

Needs ``apt-get install chromium`` (``/usr/bin/chromium``, or the path in
``POLAR_SYNC_CHROMIUM``) and the ``playwright`` package; skipped, saying
which is missing, without them. ``playwright install`` is not needed: the
system Chromium is used.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from polar_sync.services import customer_refresh, customers_pull
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT

CHROMIUM = Path(os.environ.get("POLAR_SYNC_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set POLAR_SYNC_CHROMIUM)"
    return None


# CI sets this: there a missing browser is a failure, not a skip.
REQUIRED = os.environ.get("POLAR_SYNC_REQUIRE_BROWSER") == "1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(
        _missing() is not None and not REQUIRED, reason=f"browser test skipped: {_missing()}"
    ),
]


@pytest.fixture(autouse=True)
def _browser_available() -> None:
    if _missing() is not None:
        pytest.fail(f"POLAR_SYNC_REQUIRE_BROWSER=1 but {_missing()}")


PASSWORD = "correct horse battery staple"


@pytest.fixture
def world(live_polar, settings, django_user_model):
    """Ada in Polar with a subscription, mirrored; an operator account."""
    # Keep the operator's account out of Polar: this test is about the admin.
    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "PUSH_ENABLED": False}
    store = live_polar.store
    ada = store.add_customer(email="ada@example.com", name="Ada Lovelace", external_id="ada")
    store.start_subscription(ada["id"], product_id=PRODUCT, amount=2900)
    store.grant_benefit(ada["id"], "license_keys", benefit_id=BENEFIT)
    store.add_customer(email="grace@example.com", name="Grace Hopper")
    customers_pull()
    customer_refresh(customer_id=ada["id"])
    django_user_model.objects.create_superuser("operator", "op@example.com", PASSWORD)
    # A change in Polar that the mirror has not seen yet: the refresh must bring it.
    store.start_subscription(ada["id"], product_id=OTHER, amount=900)
    return ada


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_operator_finds_a_customer_and_refreshes_it(world, live_server, capsys):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "admin-customer.png"
    # The ORM is used only before and after: Playwright's sync API runs an event loop here.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(f"{live_server.url}/admin/login/?next=/admin/polar_sync/customer/")
            page.fill("#id_username", "operator")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            expect(page.locator("#result_list")).to_contain_text("grace@example.com")

            page.fill("#searchbar", "ada@example.com")
            page.press("#searchbar", "Enter")
            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(1)
            rows.get_by_role("link", name="ada@example.com").click()

            subscriptions = page.locator("#active_subscriptions-group")
            expect(subscriptions).to_contain_text(PRODUCT)
            expect(subscriptions).to_contain_text("29.00 USD")
            expect(subscriptions).not_to_contain_text(OTHER)
            expect(page.locator("#granted_benefits-group")).to_contain_text(BENEFIT)

            page.get_by_role("button", name="Refresh from Polar").click()
            expect(page.locator(".messagelist .success")).to_have_text(
                "Refreshed ada@example.com from Polar."
            )
            expect(subscriptions).to_contain_text(OTHER)  # the change made in Polar
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nbrowser test screenshot: {screenshot}")
