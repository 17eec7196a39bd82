"""polar_sync's URLs; include them: ``path("polar/", include("polar_sync.urls"))``."""

from django.urls import include, path  # each feature adds its routes below

from .webhooks import webhook_view

app_name = "polar_sync"

urlpatterns: list = []

# Polar's webhooks (see polar_sync/webhooks.py).
urlpatterns += [path("webhooks/", webhook_view, name="webhooks")]

# The read-only REST API and its OpenAPI schema (see polar_sync/api/).
urlpatterns += [path("api/", include("polar_sync.api.urls"))]
