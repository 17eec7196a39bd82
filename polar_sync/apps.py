from django.apps import AppConfig


class PolarSyncConfig(AppConfig):
    name = "polar_sync"
    verbose_name = "Polar sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import connect as connect_receivers

        connect_receivers()  # push local user changes to Polar (services/push/)
