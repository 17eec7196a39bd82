"""``manage.py polar_push``: ``--user`` never deletes; ``--delete-external-id`` shows what it
deletes and asks first. Against the local Polar server (real HTTP)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from polar_sync.models import Customer, PushOutbox
from tests.factories import make_customer
from tests.push_support import make_user, polar_customer


@pytest.fixture
def polar(live_polar, transactional_db):
    """The local Polar server; commits are real, so the after-commit drain runs in-process."""
    return live_polar


@pytest.fixture
def answers(monkeypatch):
    """What the operator types at the confirmation prompt, and the prompts shown."""

    class Answers:
        given: list[str] = []
        prompts: list[str] = []

        def __call__(self, prompt: str) -> str:
            self.prompts.append(prompt)
            if not self.given:
                raise EOFError
            return self.given.pop(0)

    answers = Answers()
    monkeypatch.setattr("builtins.input", answers)
    return answers


def orphan(polar, external_id: str = "usr_0000001") -> dict:
    """A live Polar customer whose external ID no local user has."""
    polar.store.add_customer(email="orphan@example.com", external_id=external_id)
    polar.store.reset_requests()
    return polar_customer(polar, external_id)


def test_user_without_a_local_user_is_refused_and_nothing_is_sent(polar, polar_conf):
    polar_conf(DELETE_CUSTOMER_ON_USER_DELETE=True)
    customer = orphan(polar)
    out = StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("polar_push", "--user", "usr_0000001", stdout=out)
    message = str(refused.value)
    assert "No local user has external ID 'usr_0000001': nothing to push" in message
    assert "--delete-external-id usr_0000001" in message
    assert polar.store.log.request_total == 0
    assert polar.store.get_customer(customer["id"])["deleted_at"] is None
    assert "deleted" not in out.getvalue()


def test_user_without_a_local_user_points_at_a_queued_deletion(polar, polar_conf):
    polar_conf(DELETE_CUSTOMER_ON_USER_DELETE=True)
    user = make_user()
    external_id = str(user.pk)
    polar.faults.fail_rate = 1.0  # the deletion stays queued
    user.delete()
    polar.faults.fail_rate = 0.0
    assert PushOutbox.objects.get(external_id=external_id).action == PushOutbox.Action.DELETE
    with pytest.raises(CommandError, match="the deletion queued when the user was deleted"):
        call_command("polar_push", "--user", external_id, stdout=StringIO())


def test_delete_external_id_shows_the_customer_then_deletes_it_with_yes(polar):
    customer = orphan(polar)
    make_customer(id=customer["id"], external_id="usr_0000001", email="orphan@example.com")
    out = StringIO()
    call_command("polar_push", "--delete-external-id", "usr_0000001", "--yes", stdout=out)
    text = out.getvalue()
    assert f"Polar customer {customer['id']} (orphan@example.com, external ID 'usr_0000001')" in (
        text
    )
    assert f"Deleted Polar customer {customer['id']}." in text
    assert polar.store.get_customer(customer["id"])["deleted_at"] is not None
    assert polar.store.request_counts == {"customers:get_external": 1, "customers:delete": 1}
    assert Customer.objects.get(pk=customer["id"]).deleted_at is not None  # the mirror follows


def test_delete_external_id_asks_first_and_a_no_deletes_nothing(polar, answers):
    customer = orphan(polar)
    answers.given = ["no"]
    out = StringIO()
    with pytest.raises(CommandError, match="cancelled: nothing was deleted"):
        call_command("polar_push", "--delete-external-id", "usr_0000001", stdout=out)
    assert customer["id"] in out.getvalue() and "orphan@example.com" in out.getvalue()
    assert len(answers.prompts) == 1
    assert polar.store.get_customer(customer["id"])["deleted_at"] is None
    assert polar.store.request_counts == {"customers:get_external": 1}


def test_delete_external_id_without_a_terminal_deletes_nothing(polar, answers):
    customer = orphan(polar)
    with pytest.raises(CommandError, match="cancelled"):
        call_command("polar_push", "--delete-external-id", "usr_0000001", stdout=StringIO())
    assert polar.store.get_customer(customer["id"])["deleted_at"] is None


def test_delete_external_id_deletes_on_yes_and_warns_of_a_local_user(polar, answers):
    user = make_user()
    external_id = str(user.pk)
    customer = polar_customer(polar, external_id)
    answers.given = ["yes"]
    out = StringIO()
    call_command("polar_push", "--no-input", "--delete-external-id", external_id, stdout=out)
    assert answers.prompts == []  # --no-input: no question
    assert "A local user still has external ID" in out.getvalue()
    assert polar.store.get_customer(customer["id"])["deleted_at"] is not None


def test_delete_external_id_of_no_polar_customer_is_an_error(polar):
    with pytest.raises(CommandError, match="Polar has no live customer with external ID 'nobody'"):
        call_command("polar_push", "--delete-external-id", "nobody", "--yes", stdout=StringIO())
    assert polar.store.request_counts == {"customers:get_external": 1}


@pytest.mark.parametrize("other", [["--user", "1"], ["--reconcile"], ["--retry-failed"]])
def test_delete_external_id_combines_with_nothing(polar, other):
    with pytest.raises(CommandError, match=f"cannot be combined with {other[0]}"):
        call_command("polar_push", "--delete-external-id", "x", *other, stdout=StringIO())
    assert polar.store.log.request_total == 0
