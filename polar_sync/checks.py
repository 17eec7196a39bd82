"""Django system checks for ``settings.POLAR_SYNC`` (ids ``polar_sync.E0xx`` / ``W0xx``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from .conf import (
    API_VERSIONS,
    HEARTBEAT_INTERVAL,
    LOCK_TIMEOUT_MIN,
    PolarSyncSettings,
    is_loopback_url,
    polar_settings,
)
from .exceptions import PolarConfigurationError

DEFAULT_LOCK_TIMEOUT = PolarSyncSettings.LOCK_TIMEOUT
# A customer state with a few subscriptions, benefits and meters is a few KB.
MIN_WEBHOOK_BODY_BYTES = 16 * 1024


def _settings() -> PolarSyncSettings | None:
    """The settings, or None when they are invalid (``polar_sync.E001`` reports that)."""
    try:
        return polar_settings()
    except PolarConfigurationError:
        return None


@register(Tags.compatibility)
def check_polar_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    try:
        conf = polar_settings()
    except PolarConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="Fix settings.POLAR_SYNC: it is a dict of the keys listed in the README.",
                id="polar_sync.E001",
            )
        ]
    messages = _server_messages(conf)
    floor = conf.lock_timeout_floor
    # Values out of range: (wrong?, message, hint, id).
    ranges = [
        (
            not 1 <= conf.PAGE_SIZE <= 100,
            f"POLAR_SYNC['PAGE_SIZE'] is {conf.PAGE_SIZE}: Polar accepts 1 to 100.",
            "Leave it unset to use 100, the fastest value.",
            "polar_sync.E003",
        ),
        (
            conf.TIMEOUT <= 0 or conf.MAX_RETRIES < 0,
            f"POLAR_SYNC TIMEOUT={conf.TIMEOUT} / MAX_RETRIES={conf.MAX_RETRIES} are invalid.",
            "TIMEOUT must be > 0 seconds and MAX_RETRIES >= 0.",
            "polar_sync.E005",
        ),
        (
            conf.TIMEOUT > 0 and floor > conf.LOCK_TIMEOUT,
            f"POLAR_SYNC['LOCK_TIMEOUT'] is {conf.LOCK_TIMEOUT:g}s: a live sync could be taken "
            "for dead and its lock taken over while it waits for one HTTP request.",
            f"Set it to at least {floor:g}s: a running sync heartbeats every "
            f"{HEARTBEAT_INTERVAL:g}s, also while it waits, except during one request "
            f"(TIMEOUT={conf.TIMEOUT:g}s), so LOCK_TIMEOUT must exceed twice that interval "
            f"plus TIMEOUT, and {LOCK_TIMEOUT_MIN:g}s. The default, {DEFAULT_LOCK_TIMEOUT:g}s, "
            f"suits a TIMEOUT up to {DEFAULT_LOCK_TIMEOUT / 2 - HEARTBEAT_INTERVAL:g}s.",
            "polar_sync.E004",
        ),
        (
            conf.PULL_CHECKPOINT_MAX_AGE <= 0,
            f"POLAR_SYNC['PULL_CHECKPOINT_MAX_AGE'] is {conf.PULL_CHECKPOINT_MAX_AGE}: every "
            "checkpoint would be stale, so a failed pull could never be resumed.",
            "Give seconds > 0; leave it unset for 86400 (a day).",
            "polar_sync.E011",
        ),
        (
            conf.WEBHOOK_TOLERANCE <= 0,
            f"POLAR_SYNC['WEBHOOK_TOLERANCE'] is {conf.WEBHOOK_TOLERANCE}: every webhook "
            "delivery would be rejected as stale.",
            "Leave it unset for 300 seconds (the Standard Webhooks default).",
            "polar_sync.E006",
        ),
        (
            conf.WEBHOOK_MAX_BODY_BYTES < MIN_WEBHOOK_BODY_BYTES,
            f"POLAR_SYNC['WEBHOOK_MAX_BODY_BYTES'] is {conf.WEBHOOK_MAX_BODY_BYTES}: Polar's "
            "deliveries would be refused as too large.",
            f"Leave it unset for 1 MB (1048576); at least {MIN_WEBHOOK_BODY_BYTES} bytes, "
            "since one customer state can take several KB.",
            "polar_sync.E010",
        ),
        (
            conf.API_VERSION is not None and conf.API_VERSION not in API_VERSIONS,
            f"POLAR_SYNC['API_VERSION'] is {conf.API_VERSION!r}: polar_sync does not speak it "
            "(Polar answers 404 on every route for a version it does not support).",
            f"Use one of {', '.join(map(repr, API_VERSIONS))}, or None for a server of the "
            "2025-10 era (no Polar-Version header, with /balance); unset: '2026-04'.",
            "polar_sync.E012",
        ),
    ]
    return messages + [Error(msg, hint=hint, id=id_) for wrong, msg, hint, id_ in ranges if wrong]


def _server_messages(conf: PolarSyncSettings) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if not conf.ACCESS_TOKEN:
        # A warning, not an error: an error would also block ``migrate`` and
        # ``collectstatic`` in builds that have no secrets, which helps nobody.
        messages.append(
            Warning(
                "POLAR_SYNC['ACCESS_TOKEN'] is not set: polar_sync cannot talk to Polar.",
                hint="Create an Organization Access Token (scopes customers:read, "
                "customers:write; products:read and benefits:read for the names of "
                "products and benefits; members:read for the members of teams) in Polar's "
                "organization settings and set it, "
                "e.g. from the POLAR_ACCESS_TOKEN environment variable.",
                id="polar_sync.W002",
            )
        )
    try:
        base_url = conf.base_url
    except PolarConfigurationError as exc:
        messages.append(
            Error(
                str(exc),
                hint="Use 'production', 'sandbox', or the base URL of a local Polar server.",
                id="polar_sync.E002",
            )
        )
    else:
        if base_url.startswith("http://") and not is_loopback_url(base_url):
            messages.append(
                Warning(
                    f"POLAR_SYNC['SERVER'] is a plain http:// URL ({base_url}) that is not "
                    "loopback: the access token would travel unencrypted.",
                    hint="Use https://, or a loopback address for a local Polar server.",
                    id="polar_sync.W001",
                )
            )
    return messages


# A deployment check (``manage.py check --deploy``): development setups and builds
# without secrets include the route too, and a warning there would only be noise.
@register(Tags.security, deploy=True)
def check_webhook_secret(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    conf = _settings()
    if conf is None or conf.WEBHOOK_SECRET:
        return []
    try:
        url = reverse("polar_sync:webhooks")
    except NoReverseMatch:
        return []  # the webhook route is not included: webhooks are not used
    return [
        Warning(
            f"POLAR_SYNC['WEBHOOK_SECRET'] is not set, but the webhook endpoint {url} is "
            "routed: it answers 503 to every delivery and the mirror only learns of changes "
            "through the pull.",
            hint=f"In Polar (Settings > Webhooks) add an endpoint for https://<your host>{url} "
            "with the customer.* events, and set WEBHOOK_SECRET to its secret (the demo "
            "project reads POLAR_WEBHOOK_SECRET).",
            id="polar_sync.W003",
        )
    ]


@register(Tags.compatibility)
def check_push_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A typo in USER_PAYLOAD, USER_FILTER or USER_FIELDS would fail every user save."""
    from django.contrib.auth import get_user_model
    from django.db import router

    from .models import PushOutbox
    from .services.push import user_field_attname

    conf = _settings()
    if conf is None:
        return []
    messages: list[CheckMessage] = []
    for name in ("USER_PAYLOAD", "USER_FILTER"):
        path = getattr(conf, name)
        if not path:
            continue
        try:
            target = import_string(path)
        except ImportError as exc:
            problem = f"cannot be imported ({exc})"
        else:
            if callable(target):
                continue
            problem = f"is a {type(target).__name__}, not a callable"
        messages.append(
            Error(
                f"POLAR_SYNC['{name}'] = {path!r} {problem}.",
                hint="Give the dotted path of a function taking a user, e.g. "
                "'polar_sync.mapping.user_payload' (USER_FILTER may also be None).",
                id="polar_sync.E007",
            )
        )
    model = get_user_model()
    bad = [
        name
        for name in conf.USER_FIELDS or ()
        if user_field_attname(model=model, name=name) is None
    ]
    if bad:
        messages.append(
            Error(
                f"POLAR_SYNC['USER_FIELDS'] names {', '.join(map(repr, bad))}, which "
                f"{'is not a field' if len(bad) == 1 else 'are not fields'} stored on "
                f"{model._meta.label}.",
                hint="List the user model's own fields that USER_PAYLOAD and USER_FILTER read, "
                "e.g. ['email', 'first_name', 'last_name']; [] to compare every save with "
                "the database instead.",
                id="polar_sync.E009",
            )
        )
    # The outbox row must be written in the user's transaction: the same database.
    users, outbox = router.db_for_write(model), router.db_for_write(PushOutbox)
    if conf.PUSH_ENABLED and users != outbox:
        messages.append(
            Warning(
                f"Users are written to the {users!r} database and polar_sync's push outbox to "
                f"{outbox!r}: a user change and its outbox row cannot share a transaction, so "
                "a change committed just before a crash may never be pushed.",
                hint="Route polar_sync's models to the user model's database "
                "(DATABASE_ROUTERS), or set POLAR_SYNC['PUSH_ENABLED'] = False.",
                id="polar_sync.W004",
            )
        )
    return messages


@register(Tags.compatibility)
def check_api_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """API_PERMISSION_CLASS must name a DRF permission class: a typo would break the API."""
    from .api.permissions import api_permission_class  # the API is optional to load

    if _settings() is None:
        return []
    try:
        api_permission_class()
    except PolarConfigurationError as exc:
        return [
            Error(
                str(exc),
                hint="Give the dotted path of a rest_framework BasePermission subclass, e.g. "
                "'rest_framework.permissions.IsAdminUser' (the default).",
                id="polar_sync.E008",
            )
        ]
    return []


# The API's Swagger UI and ReDoc pages: drf_spectacular's templates, the sidecar's files.
API_DOCS_APPS = ("drf_spectacular", "drf_spectacular_sidecar")


@register(Tags.compatibility)
def check_api_docs_apps(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The docs pages are routed with ``polar_sync.urls``: they need two apps to render."""
    from django.apps import apps

    try:
        url = reverse("polar_sync:api:docs")
    except NoReverseMatch:
        return []  # the API is not included: no docs pages to render
    missing = [name for name in API_DOCS_APPS if not apps.is_installed(name)]
    if not missing:
        return []
    names = ", ".join(f'"{name}"' for name in missing)
    return [
        Warning(
            f"The API docs pages ({url} and its redoc/ sibling) are routed, but {names} "
            "not in INSTALLED_APPS: they would fail to render (templates or static files "
            "missing).",
            hint=f"Add {names} to INSTALLED_APPS (both come with polar-sync's dependencies).",
            id="polar_sync.W005",
        )
    ]
