"""polar_sync's URLs; include them: ``path("polar/", include("polar_sync.urls"))``."""

from django.urls import path  # noqa: F401  (each feature adds its routes below)

app_name = "polar_sync"

urlpatterns: list = []
