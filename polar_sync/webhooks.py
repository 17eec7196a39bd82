"""The webhook endpoint Polar posts to: verify, store, answer 202, process after commit.

Configure in Polar (Settings > Webhooks) the URL of ``polar_sync:webhooks``, e.g.
``https://example.com/polar/webhooks/``, and copy its secret to
``POLAR_SYNC["WEBHOOK_SECRET"]``.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services

logger = logging.getLogger("polar_sync.webhooks")


@csrf_exempt  # authenticated by its signature instead; Polar has no CSRF token
@require_POST
def webhook_view(request: HttpRequest) -> JsonResponse:
    """Answer 202 once the delivery is stored; 4xx (nothing stored) when it is not genuine."""
    try:
        # Read through the limit, not request.body: an oversize body is refused unparsed.
        body = services.webhook_body_read(
            stream=request, content_length=request.META.get("CONTENT_LENGTH")
        )
        event, created = services.webhook_receive(body=body, headers=request.headers)
    except services.WebhookRejected as exc:
        log = logger.error if exc.status >= 500 else logger.warning
        log(
            "webhook rejected with %d: %s (webhook-id %r, from %s)",
            exc.status,
            exc.reason,
            request.headers.get("webhook-id", "")[:80],
            request.META.get("REMOTE_ADDR", "?"),
        )
        return JsonResponse({"detail": exc.reason}, status=exc.status)
    return JsonResponse({"webhook_id": event.webhook_id, "duplicate": not created}, status=202)
