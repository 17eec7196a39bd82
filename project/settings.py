"""Settings for the polar_sync demo project.

Everything comes from environment variables with development defaults:
SQLite, the local Polar server, and no broker (Celery tasks run eagerly).
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url

from polar_sync.schedule import BEAT_SCHEDULE, TASK_ROUTES

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "polar-sync-demo-not-for-production")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "polar_sync",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "project.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=60,
    )
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the admin read while a sync writes; IMMEDIATE avoids lock-upgrade
    # deadlocks between concurrent writers (a Celery worker and the web process).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    }
}

POLAR_SYNC: dict[str, Any] = {
    "ACCESS_TOKEN": os.environ.get("POLAR_ACCESS_TOKEN", ""),
    "SERVER": os.environ.get("POLAR_SERVER", "production"),
    "ORGANIZATION_ID": os.environ.get("POLAR_ORGANIZATION_ID") or None,
    # Polar-Version sent; "none": no header, for a server of the 2025-10 era (with /balance).
    "API_VERSION": (
        None
        if os.environ.get("POLAR_API_VERSION", "").lower() == "none"
        else os.environ.get("POLAR_API_VERSION") or "2026-04"
    ),
    # Requests/minute polar_sync may spend; unset: 80% of the server's documented limit
    # (no budget for a server on loopback, such as the local Polar server).
    "RATE_LIMIT": int(os.environ.get("POLAR_RATE_LIMIT") or 0) or None,
    # The secret of the webhook endpoint configured in Polar (polar_sync:webhooks).
    "WEBHOOK_SECRET": os.environ.get("POLAR_WEBHOOK_SECRET", ""),
}

# Celery: with no broker configured the demo runs tasks in-process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "memory://")
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# Periodic work (run ``celery -A project beat``): polar_sync's schedule, each interval
# overridable from the environment (seconds).
_INTERVALS = {
    "polar-pull-customers": "POLAR_PULL_INTERVAL",
    "polar-pull-members": "POLAR_MEMBERS_INTERVAL",
    "polar-refresh-states": "POLAR_STATES_INTERVAL",
    "polar-refresh-balances": "POLAR_BALANCES_INTERVAL",
    "polar-pull-catalog": "POLAR_CATALOG_INTERVAL",
    "polar-drain-outbox": "POLAR_PUSH_DRAIN_INTERVAL",
    "polar-sweep-webhooks": "POLAR_WEBHOOK_SWEEP_INTERVAL",
    "polar-reconcile-users": "POLAR_RECONCILE_INTERVAL",
}
CELERY_BEAT_SCHEDULE = {
    name: {**entry, "schedule": float(os.environ.get(_INTERVALS[name], entry["schedule"]))}
    for name, entry in BEAT_SCHEDULE.items()
}
# Three queues, so pushes and webhooks never wait behind a refresh: run a worker with
# ``-Q polar_sync.push,polar_sync.webhooks`` and another with ``-Q polar_sync.sync``.
CELERY_TASK_ROUTES = TASK_ROUTES

# polar_sync's records propagate to the root logger's one handler. Under a Celery worker
# that handler is Celery's (it replaces the root's handlers) and the root's level is the
# worker's --loglevel, so each run's INFO line prints once with ``--loglevel=INFO``; a
# handler on "polar_sync" itself as well would print every line twice there. Commands
# show warnings only, unless POLAR_SYNC_LOG_LEVEL says otherwise.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {},
}
if os.environ.get("POLAR_SYNC_LOG_LEVEL"):
    LOGGING["loggers"]["polar_sync"] = {"level": os.environ["POLAR_SYNC_LOG_LEVEL"]}
