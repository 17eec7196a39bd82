"""The OpenAPI schema of polar_sync's API, wherever the project mounts it."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

import polar_sync

SCHEMA_SETTINGS = {
    "TITLE": "polar_sync API",
    "DESCRIPTION": "A read-only view of the local mirror of Polar customers, their states "
    "and their balances.",
    "VERSION": polar_sync.__version__,
}


class PolarSchemaView(SpectacularAPIView):
    """OpenAPI 3 for `customers/`, `customers/<id>/`, `customers/<id>/members/` and `me/`
    only (YAML or JSON)."""

    permission_classes = [IsAuthenticated]
    custom_settings = SCHEMA_SETTINGS
    # The routes to document, given by the URLconf: ``as_view(endpoints=...)``.
    endpoints: list[Any] = []

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        # Paths are documented under the prefix the project mounted polar_sync at.
        prefix = request.path_info.removesuffix("schema/")
        self.patterns = [path(prefix.lstrip("/"), include(self.endpoints))]
        return super().get(request, *args, **kwargs)
