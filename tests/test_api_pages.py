"""The API's pages for people: the root, Swagger UI and ReDoc (offline), and descriptions
that render (Markdown, not RST) in the browsable API and the schema."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import resolve, reverse
from rest_framework.test import APIClient

from polar_sync.api.markup import markdown_to_html
from tests.factories import make_customer
from tests.mirror_helpers import make_user

pytestmark = pytest.mark.django_db

ROOT = reverse("polar_sync:api:root")
DOCS = reverse("polar_sync:api:docs")
REDOC = reverse("polar_sync:api:redoc")
SCHEMA = reverse("polar_sync:api:schema")
# Every attribute that makes a browser fetch something.
ASSET = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(make_user(staff=True))
    return client


def test_root_docs_and_redoc_live_under_the_api():
    assert (ROOT, DOCS, REDOC) == ("/polar/api/", "/polar/api/docs/", "/polar/api/redoc/")


@pytest.mark.parametrize("url", [DOCS, REDOC])
def test_docs_pages_load_only_local_static_files(staff, url):
    response = staff.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assets = ASSET.findall(page)
    assert assets, page
    for asset in assets:
        assert asset.startswith(f"{settings.STATIC_URL}drf_spectacular_sidecar/"), asset
        # ... and the file is there for collectstatic and the static files server.
        assert finders.find(asset.removeprefix(settings.STATIC_URL)), asset
    assert "://" not in page  # no CDN, no absolute URL at all
    assert SCHEMA in page  # the page reads this API's schema


def test_swagger_ui_page_loads_its_script_and_stylesheet(staff):
    page = staff.get(DOCS).content.decode()
    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert f"drf_spectacular_sidecar/swagger-ui-dist/{name}" in page


def test_redoc_page_loads_its_bundle(staff):
    page = staff.get(REDOC).content.decode()
    assert "drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js" in page


@pytest.mark.parametrize("url", [ROOT, DOCS, REDOC])
def test_pages_are_for_signed_in_users(url):
    assert Client().get(url).status_code in (401, 403)


def test_root_lists_every_endpoint():
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    response = api.get(ROOT, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    links = response.json()
    base = "http://testserver/polar/api/"
    assert links == {
        "customers": f"{base}customers/",
        "customer": f"{base}customers/{{id}}/",
        "customer-members": f"{base}customers/{{id}}/members/",
        "me": f"{base}me/",
        "schema": f"{base}schema/",
        "docs": f"{base}docs/",
        "redoc": f"{base}redoc/",
    }
    # Each link leads to a route of the API (the templates with a customer's ID).
    customer = make_customer()
    for name, link in links.items():
        path = link.removeprefix("http://testserver").replace("{id}", str(customer.pk))
        assert resolve(path).namespace == "polar_sync:api", name
        assert api.get(path).status_code in (200, 404), name  # 404: the user has no customer


def test_root_is_browsable(staff):
    response = staff.get(ROOT, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    page = response.content.decode()
    assert "polar_sync API" in page
    assert "/polar/api/customers/" in page and "/polar/api/docs/" in page


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_schema_descriptions_are_markdown_not_rst():
    api = APIClient()
    api.force_authenticate(make_user(staff=True))
    schema = api.get(SCHEMA, {"format": "json"}).json()
    texts = list(_strings(schema))
    assert [text for text in texts if "``" in text] == []
    # The Markdown is there to render: inline code in single backticks.
    customers = schema["paths"]["/polar/api/customers/"]["get"]["description"]
    assert "`API_PERMISSION_CLASS`" in customers


@pytest.mark.parametrize(
    "url",
    [
        ROOT,
        reverse("polar_sync:api:customer-list"),
        reverse("polar_sync:api:me"),
        "customer-detail",
        "customer-members",
    ],
)
def test_browsable_api_renders_descriptions(staff, url):
    if not url.startswith("/"):
        url = reverse(f"polar_sync:api:{url}", args=[make_customer().pk])
    response = staff.get(url, HTTP_ACCEPT="text/html")
    page = response.content.decode()
    description = re.search(r'<div class="pull-left">(.*?)</div>', page, re.S)
    assert description is not None, page[:2000]
    assert "`" not in description.group(1)
    assert "<code>" in description.group(1)


def test_markdown_to_html_escapes_and_renders_inline_code():
    html = markdown_to_html("A <b>bold</b> `x<y` and\n`z`.\n\nTwo & more.")
    assert html == (
        "<p>A &lt;b&gt;bold&lt;/b&gt; <code>x&lt;y</code> and <code>z</code>.</p>"
        "<p>Two &amp; more.</p>"
    )


def run_check() -> str:
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


def test_check_warns_when_the_docs_apps_are_not_installed():
    apps = [app for app in settings.INSTALLED_APPS if app != "drf_spectacular_sidecar"]
    with override_settings(INSTALLED_APPS=apps):
        output = run_check()
    assert "polar_sync.W005" in output and '"drf_spectacular_sidecar"' in output
    assert "polar_sync.W005" not in run_check()


def test_check_is_silent_when_the_api_is_not_routed():
    apps = [app for app in settings.INSTALLED_APPS if not app.startswith("drf_spectacular")]
    with override_settings(INSTALLED_APPS=apps, ROOT_URLCONF="tests.urls_without_polar"):
        assert "polar_sync.W005" not in run_check()
