"""Test settings: the demo project's, with a token set and fast hashing."""

import importlib.util
import os
import tempfile
import warnings

from django.utils import deprecation

from project.settings import *  # noqa: F403

# Django's own deprecation warnings are errors, on every Django version (the class
# names change with each release, so they are read from Django). Set here, before
# the apps load, so that a warning raised while defining a model fails too;
# tests/conftest.py does the same for warnings raised inside a test.
DJANGO_DEPRECATIONS = [
    value
    for name, value in vars(deprecation).items()
    if name.startswith("Removed") and isinstance(value, type) and issubclass(value, Warning)
]
for _category in DJANGO_DEPRECATIONS:
    warnings.filterwarnings("error", category=_category)

POLAR_SYNC = {
    "ACCESS_TOKEN": "polar_oat_test_token_0123456789",
    # Nothing listens on port 9 (discard): a test that forgets to mock HTTP fails fast.
    "SERVER": "http://127.0.0.1:9",
    "TIMEOUT": 2.0,
    "MAX_RETRIES": 2,
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not the in-memory default: shared-cache memory databases fail
    # concurrent writers at once ("table is locked") where a real SQLite file
    # (WAL, busy timeout) makes them wait, as it does in production.
    # One file per process, so that parallel runs never share a test database.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"polar_sync_test_{os.getpid()}.sqlite3")
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"

# django-celery-beat (the "beat" extra) when it is installed: tests/test_beat_install.py
# installs the schedule into its tables; without it those tests skip. Not in the demo
# project, which keeps beat's schedule in CELERY_BEAT_SCHEDULE.
if importlib.util.find_spec("django_celery_beat"):
    INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_beat"]  # noqa: F405
