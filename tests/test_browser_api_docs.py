"""Swagger UI and ReDoc in a real browser, offline: Chromium may fetch nothing but the
test server, and both pages still render the API's operations.

Needs Chromium and playwright, as ``tests/test_browser.py`` (skipped without them, a
failure in CI). A screenshot of Swagger UI is saved under ``artifacts/``.
"""

from __future__ import annotations

import pytest
from django.test import Client

from tests import test_browser
from tests.factories import make_customer
from tests.mirror_helpers import make_user
from tests.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

# The same marks, skip and CI rule as the admin's browser test.
pytestmark = test_browser.pytestmark
_browser_available = test_browser._browser_available


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_swagger_ui_and_redoc_render_offline(live_server, settings, capsys):
    from playwright.sync_api import expect, sync_playwright

    settings.POLAR_SYNC = {**settings.POLAR_SYNC, "PUSH_ENABLED": False}  # no Polar here
    make_customer(email="ada@example.com")
    client = Client()
    client.force_login(make_user(staff=True))
    cookie = settings.SESSION_COOKIE_NAME
    session = client.cookies[cookie].value
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "api-swagger-ui.png"
    elsewhere: list[str] = []

    def only_the_test_server(route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.route("**/*", only_the_test_server)
            context.add_cookies([{"name": cookie, "value": session, "url": live_server.url}])
            page = context.new_page()
            page.set_default_timeout(20_000)

            page.goto(f"{live_server.url}/polar/api/docs/")
            operations = page.locator(".swagger-ui .opblock-summary-path")
            expect(operations.first).to_be_visible()
            paths = set(operations.all_inner_texts())
            assert {"/polar/api/customers/", "/polar/api/me/"} <= {
                p.replace("\u200b", "") for p in paths
            }, paths
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("polar_sync API")

            # Try it out: the page calls the API with the session, as the signed-in user.
            customers = page.locator("#operations-customers-customers_list")
            customers.locator(".opblock-summary").click()
            customers.get_by_role("button", name="Try it out").click()
            customers.get_by_role("button", name="Execute").click()
            expect(
                customers.locator(".live-responses-table tbody .response-col_status").first
            ).to_have_text("200")
            expect(customers.locator(".live-responses-table")).to_contain_text("ada@example.com")
            page.screenshot(path=str(screenshot), full_page=True)

            page.goto(f"{live_server.url}/polar/api/redoc/")
            expect(page.locator("h1").first).to_contain_text("polar_sync API")
            expect(page.get_by_text("/polar/api/customers/").first).to_be_attached()
        finally:
            browser.close()
    assert elsewhere == []
    assert screenshot.stat().st_size > 10_000
    with capsys.disabled():
        print(f"\nSwagger UI screenshot: {screenshot}")
