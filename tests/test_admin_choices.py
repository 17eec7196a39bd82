"""The changelist's filter choices stay cheap however many state rows the mirror holds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from polar_sync.catalog_selectors import customer_benefit_choices, customer_product_choices
from polar_sync.models import Benefit, Product
from tests.factories import make_customer, make_state
from tests.mirror_helpers import BENEFIT, OTHER, PRODUCT

pytestmark = pytest.mark.django_db


def test_names_are_looked_up_once_per_choice_not_once_per_state_row():
    now = timezone.now()
    Product.objects.create(id=PRODUCT, name="Pro", created_at=now, synced_at=now)
    Benefit.objects.create(
        id=BENEFIT, type="license_keys", description="Key", created_at=now, synced_at=now
    )
    for _ in range(3):
        make_state(make_customer())
    make_state(make_customer(), product_id=OTHER, benefit_id=OTHER)
    with CaptureQueriesContext(connection) as queries:
        products = customer_product_choices()
        benefits = customer_benefit_choices()
    products_named = {str(pk): name for pk, name in products}
    benefits_named = {str(pk): name for pk, name in benefits}
    assert products_named[PRODUCT] == "Pro" and products_named[OTHER] is None
    assert benefits_named[BENEFIT] == "Key" and benefits_named[OTHER] is None
    # A name subquery inside SELECT DISTINCT runs for every state row before the
    # duplicates go (300 ms over 90,000 grants); after DISTINCT it runs per choice.
    for query in queries.captured_queries:
        sql = query["sql"]
        catalogue = '"polar_sync_product"' in sql or '"polar_sync_benefit"' in sql
        assert not ("DISTINCT" in sql and catalogue), sql
