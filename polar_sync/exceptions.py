"""One exception tree for everything that can go wrong talking to Polar.

Below the root ``PolarError``, ``PolarTransientError`` is worth retrying (network,
timeouts, 429, 5xx) and ``PolarPermanentError`` fails again the same way (401/403,
404, 422, a malformed body). A configuration problem is Django's
``ImproperlyConfigured``: the deployer's to fix, not the caller's to handle.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class PolarConfigurationError(ImproperlyConfigured):
    """A ``POLAR_SYNC`` setting is missing or invalid."""


class PolarError(Exception):
    """Root of every error raised while talking to Polar."""

    def __init__(
        self, message: str, *, operation: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.status_code = status_code

    def __str__(self) -> str:
        prefix = f"{self.operation}: " if self.operation else ""
        status = f" (HTTP {self.status_code})" if self.status_code else ""
        return f"{prefix}{self.message}{status}"


class PolarTransientError(PolarError):
    """A failure that may succeed when tried again later."""


class PolarNetworkError(PolarTransientError):
    """The request did not get an HTTP answer: connection refused, reset, DNS..."""


class PolarTimeoutError(PolarNetworkError):
    """No answer within the configured timeout."""


class PolarRateLimitError(PolarTransientError):
    """429 Too Many Requests; ``retry_after`` is in seconds when Polar said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PolarServerError(PolarTransientError):
    """A 5xx answer from Polar."""


class PolarPermanentError(PolarError):
    """A failure that will repeat if the same request is sent again."""


class PolarAuthenticationError(PolarPermanentError):
    """401: the access token is missing, wrong or revoked."""


class PolarPermissionError(PolarAuthenticationError):
    """403: the token lacks a scope (``customers:read`` / ``customers:write``)."""


class PolarNotFoundError(PolarPermanentError):
    """404 with Polar's ``ResourceNotFound`` body: the customer does not exist."""

    def __init__(self, message: str, *, detail: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.detail = detail


class PolarEndpointNotAvailableError(PolarPermanentError):
    """404 without Polar's ``error`` field: the route does not exist (newer API versions
    removed ``/balance``): "stop asking", not "this customer is gone"."""


class PolarValidationError(PolarPermanentError):
    """422 with Polar's list of field errors in ``errors``."""

    def __init__(
        self, message: str, *, errors: list[dict[str, Any]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.errors = errors or []

    def has_error_on(self, field: str) -> bool:
        """Whether one of the errors concerns ``field`` (last element of ``loc``)."""
        return any(field in (e.get("loc") or [])[-1:] for e in self.errors)


class PolarClientError(PolarPermanentError):
    """Any other 4xx answer."""


class PolarResponseError(PolarPermanentError):
    """The answer could not be understood: not JSON, or not the expected shape."""


class SyncRunLostError(PolarError):
    """A sync run found its row no longer ``running``: another worker took it for dead.
    The run stops writing at once; the row is now the other worker's (``abandoned``)."""


class WebhookRejected(PolarError):
    """A delivery that must not be stored: missing headers, bad signature, stale, not JSON.
    ``status`` is the HTTP status to answer; the message never contains the secret."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class PolarTaskFailed(PolarError):
    """Raised by a Celery task whose pull, refresh or drain failed, after the failure was
    recorded (on its :class:`~polar_sync.models.SyncRun`, or on the outbox rows), so that
    Celery, Flower and Sentry count the task as failed rather than succeeded."""
