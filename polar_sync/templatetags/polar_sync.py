"""Entitlements in templates (``{% load polar_sync %}``; examples in README, "Entitlements").

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
    return selectors.user_has_benefit(user, benefit_id)


@register.filter
def has_active_subscription(user: Any, product_id: Any = None) -> bool:
    return selectors.user_has_active_subscription(user, product_id or None)


@register.simple_tag
def polar_customer_state(user: Any) -> selectors.CustomerStateSnapshot | None:
    return selectors.user_customer_state(user)
