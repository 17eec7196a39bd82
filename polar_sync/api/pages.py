"""The API's pages for people: the root (``api/``), Swagger UI (``api/docs/``) and ReDoc
(``api/redoc/``).

Swagger UI and ReDoc come from ``drf-spectacular-sidecar``'s static files, whatever the
project's ``SPECTACULAR_SETTINGS`` say: the pages load nothing from a CDN, so they work
offline and under a strict Content Security Policy. Like the schema they read, they are
for signed-in users.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.templatetags.static import static
from django.urls import reverse
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .markup import MarkdownDescriptionMixin
from .schema import SCHEMA_SETTINGS

SIDECAR = "drf_spectacular_sidecar"
# A placeholder ID, replaced by ``{id}`` in the root's URL templates.
_ANY_ID = uuid.UUID(int=0)


def _path(request: Request, name: str, **kwargs: Any) -> str:
    """The path of this API's route ``name``, under the namespace that served ``request``
    (so that a project may include ``polar_sync.urls`` more than once)."""
    match = request.resolver_match
    current_app = match.namespace if match is not None else None
    return reverse(f"polar_sync:api:{name}", kwargs=kwargs or None, current_app=current_app)


def _url(request: Request, name: str, **kwargs: Any) -> str:
    return request.build_absolute_uri(_path(request, name, **kwargs))


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI over this API's schema, from local static files."""

    permission_classes = [IsAuthenticated]
    title = SCHEMA_SETTINGS["TITLE"]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.url = _path(request, "schema")  # a path: same scheme and host behind a proxy
        return super().get(request, *args, **kwargs)

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return static(f"{SIDECAR}/swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return static(f"{SIDECAR}/swagger-ui-dist/favicon-32x32.png")


class RedocView(SpectacularRedocView):
    """ReDoc over this API's schema, from local static files (no web fonts)."""

    permission_classes = [IsAuthenticated]
    template_name = "polar_sync/api/redoc.html"
    title = SCHEMA_SETTINGS["TITLE"]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        self.url = _path(request, "schema")  # a path: same scheme and host behind a proxy
        return super().get(request, *args, **kwargs)

    @staticmethod
    def _redoc_standalone() -> str:
        return static(f"{SIDECAR}/redoc/bundles/redoc.standalone.js")


class ApiRootView(MarkdownDescriptionMixin, APIView):
    """The endpoints of the polar_sync API, read-only. `{id}` stands for a customer's
    Polar ID.

    The OpenAPI schema documents each one; `docs` (Swagger UI) and `redoc` (ReDoc) show it.
    """

    permission_classes = [IsAuthenticated]
    name = "polar_sync API"

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        def template(name: str) -> str:
            return _url(request, name, pk=_ANY_ID).replace(str(_ANY_ID), "{id}")

        return Response(
            {
                "customers": _url(request, "customer-list"),
                "customer": template("customer-detail"),
                "customer-members": template("customer-members"),
                "me": _url(request, "me"),
                "schema": _url(request, "schema"),
                "docs": _url(request, "docs"),
                "redoc": _url(request, "redoc"),
            }
        )
