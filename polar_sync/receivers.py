"""Signal receivers: thin doors from user changes to the push outbox.

One ``post_save`` and one ``post_delete`` receiver on the user model: loading users
costs the host project nothing. They run inside the user's transaction and hand the
user to a service, which decides whether Polar cares and writes the outbox row; the
push itself happens after commit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from .services import push


def user_saved(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw:  # loaddata: rows restored as they were, not a change made by someone
        return
    push.user_change_record(user=instance, update_fields=update_fields, using=kwargs.get("using"))


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    push.user_deletion_record(user=instance)


def connect() -> None:
    """Connect the receivers to ``settings.AUTH_USER_MODEL`` (once, whatever the callers)."""
    user_model = settings.AUTH_USER_MODEL
    post_save.connect(user_saved, sender=user_model, dispatch_uid="polar_sync.user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid="polar_sync.user_deleted")
