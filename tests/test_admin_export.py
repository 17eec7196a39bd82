"""CSV downloads: the selection, and Polar's own export streamed through; formulas neutralised."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from polar_sync.admin.export import SELECTION_HEADER, csv_safe, csv_safe_stream
from tests.factories import make_balance, make_customer, make_state
from tests.mirror_helpers import PRODUCT, bulk_customers, make_user

CHANGELIST = reverse("admin:polar_sync_customer_changelist")
POLAR_EXPORT = reverse("admin:polar_sync_customer_polar_export")


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        ("", ""),
        (None, ""),
        (-150, -150),  # numbers polar_sync writes itself stay numbers
        (True, True),
    ],
)
def test_csv_safe(value, expected):
    assert csv_safe(value) == expected


def test_csv_safe_stream_survives_any_chunking():
    source = (
        'ID,Name,Metadata\r\n1,"=cmd|\' /C calc\'!A0","{""k"": ""v""}"\r\n'
        '2,"Zoë\nsecond line",@x\r\n3,plain,-5\r\n'
    ).encode()
    expected = [
        ["ID", "Name", "Metadata"],
        ["1", "'=cmd|' /C calc'!A0", '{"k": "v"}'],
        ["2", "Zoë\nsecond line", "'@x"],
        ["3", "plain", "'-5"],
    ]
    for size in (1, 2, 3, 7, len(source)):  # split inside "ë" and inside quoted newlines
        chunks = [source[i : i + size] for i in range(0, len(source), size)]
        out = b"".join(csv_safe_stream(chunks)).decode()
        assert list(csv.reader(io.StringIO(out))) == expected, size


@pytest.mark.django_db
def test_export_action_writes_the_selection_with_formulas_neutralised(admin_client):
    risky = make_customer(name='=HYPERLINK("http://evil","x")', email="@risky@example.com")
    make_state(risky)
    make_balance(risky, cents=-150)
    skipped = make_customer(name="Not selected")
    response = admin_client.post(
        CHANGELIST,
        {"action": "export_csv", "_selected_action": [str(risky.pk)], "index": "0"},
    )
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="polar-customers-selection-' in response["Content-Disposition"]
    header, row, *rest = read_csv(response)
    assert header == SELECTION_HEADER and rest == []
    record = dict(zip(header, row, strict=True))
    assert record["ID"] == str(risky.pk)
    assert record["Name"] == '\'=HYPERLINK("http://evil","x")'
    assert record["Email"] == "'@risky@example.com"
    assert record["Active subscriptions"] == "1" and record["Product IDs"] == PRODUCT
    assert record["Benefit grants"] == "2"
    assert record["Balance (cents)"] == "-150" and record["Balance currency"] == "usd"
    assert str(skipped.pk) not in response.getvalue().decode()


@pytest.mark.django_db
def test_export_action_query_count_does_not_grow_with_the_selection(admin_client):
    def export_all() -> int:
        ids = [str(pk) for pk in admin_client_ids()]
        data = {"action": "export_csv", "_selected_action": ids, "index": "0"}
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.post(CHANGELIST, data)
            rows = read_csv(response)
        assert len(rows) == len(ids) + 1
        return len(queries)

    def admin_client_ids():
        from polar_sync.models import Customer

        return Customer.objects.values_list("pk", flat=True)

    bulk_customers(5)
    few = export_all()
    bulk_customers(300)
    assert export_all() == few


@pytest.mark.django_db
def test_polar_export_is_streamed_through_with_formulas_neutralised(admin_client, live_polar):
    live_polar.store.add_customer(email="ok@example.com", name="Plain Name")
    live_polar.store.add_customer(email="evil@example.com", name="=1+1")
    response = admin_client.get(POLAR_EXPORT)
    assert response.status_code == 200 and response.streaming
    assert 'filename="polar-customers-' in response["Content-Disposition"]
    header, *rows = read_csv(response)
    assert header[:4] == ["ID", "External ID", "Created At", "Email"]
    names = {row[3]: row[4] for row in rows}
    assert names == {"ok@example.com": "Plain Name", "evil@example.com": "'=1+1"}
    assert live_polar.store.request_counts["customers:export"] == 1


@pytest.mark.django_db
def test_polar_export_failure_is_a_message_not_a_broken_file(admin_client, live_polar):
    live_polar.faults.fail_rate = 1.0
    response = admin_client.get(POLAR_EXPORT, follow=True)
    assert response.redirect_chain[-1][0] == CHANGELIST
    (message,) = [str(m) for m in response.context["messages"]]
    assert message.startswith("Polar's CSV export failed:")
    assert live_polar.token not in message


@pytest.mark.django_db
def test_polar_export_needs_the_view_permission(live_polar):
    web = Client()
    web.force_login(make_user(staff=True))
    assert web.get(POLAR_EXPORT).status_code == 403
    assert web.post(POLAR_EXPORT).status_code == 405
    assert live_polar.store.request_counts["customers:export"] == 0
