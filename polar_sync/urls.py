"""polar_sync's URLs; include them: ``path("polar/", include("polar_sync.urls"))``."""

from django.urls import include, path

from .webhooks import webhook_view

app_name = "polar_sync"

urlpatterns = [
    path("webhooks/", webhook_view, name="webhooks"),
    path("api/", include("polar_sync.api.urls")),
]
