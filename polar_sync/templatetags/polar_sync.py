"""Entitlements in templates: ``{% load polar_sync %}``.

::

    {% if request.user|has_benefit:"397a17aa-15cf-4cb4-9333-18040203cf98" %}...{% endif %}
    {% if request.user|has_active_subscription %}...{% endif %}
    {% if request.user|has_active_subscription:product_id %}...{% endif %}

    {% polar_customer_state request.user as polar %}   {# one query, many checks #}
    {% if polar and "397a17aa-15cf-4cb4-9333-18040203cf98" in polar.benefit_ids %}...{% endif %}
    {% for sub in polar.subscriptions %}{{ sub.product_id }}{% endfor %}

Each filter costs one query; ``polar_customer_state`` costs one query for any
number of checks on its result. A malformed ID raises ``ValueError``: a typo
in a template should fail loudly, not hide a feature.
"""

from __future__ import annotations

from typing import Any

from django import template

from .. import selectors

register = template.Library()


@register.filter
def has_benefit(user: Any, benefit_id: Any) -> bool:
    """Whether ``user``'s Polar customer holds the benefit ``benefit_id``."""
    return selectors.user_has_benefit(user, benefit_id)


@register.filter
def has_active_subscription(user: Any, product_id: Any = None) -> bool:
    """Whether ``user``'s Polar customer has an active subscription (to ``product_id``)."""
    return selectors.user_has_active_subscription(user, product_id or None)


@register.simple_tag
def polar_customer_state(user: Any) -> selectors.CustomerStateSnapshot | None:
    """``user``'s customer, state and balance (see ``selectors.user_customer_state``)."""
    return selectors.user_customer_state(user)
