"""A URLconf that does not include polar_sync's routes (for the webhook secret check)."""

urlpatterns: list = []
