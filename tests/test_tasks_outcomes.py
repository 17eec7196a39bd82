"""What Celery sees of a run: a failed pull, refresh or drain ends the task FAILED
(its SyncRun or outbox rows keep the details), and each run logs one INFO line."""

from __future__ import annotations

import logging

import pytest
from celery import states

from polar_sync import tasks
from polar_sync.exceptions import PolarTaskFailed
from polar_sync.models import PushOutbox, SyncRun
from tests.push_support import make_user

pytestmark = pytest.mark.django_db


def run_task(task, **kwargs):
    """Run ``task`` as a worker would (not eagerly propagating): its Celery state and result."""
    result = task.apply(kwargs=kwargs, throw=False)
    return result.state, result.result


@pytest.mark.parametrize(
    ("task", "kind"),
    [
        (tasks.pull_customers, SyncRun.Kind.CUSTOMERS),
        (tasks.refresh_states, SyncRun.Kind.STATES),
        (tasks.pull_catalog, SyncRun.Kind.CATALOG),
    ],
)
def test_a_failed_run_fails_the_task_and_the_run_keeps_the_details(
    live_polar, polar_conf, task, kind, caplog
):
    for n in range(3):
        live_polar.store.add_customer(email=f"c{n}@example.com")
    with caplog.at_level(logging.INFO, logger="polar_sync"):
        state, result = run_task(tasks.pull_customers)
    assert state == states.SUCCESS
    assert result["status"] == SyncRun.Status.SUCCEEDED
    summaries = [
        r.getMessage() for r in caplog.records if f"run {result['run']} " in r.getMessage()
    ]
    assert len(summaries) == 1, summaries  # one INFO line per run, with its counts
    assert "3 created" in summaries[0]

    polar_conf(ACCESS_TOKEN="polar_oat_refused_by_the_server")
    state, error = run_task(task)
    run = SyncRun.objects.filter(kind=kind).latest()
    assert run.status == SyncRun.Status.FAILED
    assert state == states.FAILURE
    assert isinstance(error, PolarTaskFailed)
    assert f"sync run {run.pk} failed" in str(error)
    assert "token" in run.error and "token" in str(error)


@pytest.fixture
def queued_users(live_polar, transactional_db, monkeypatch):
    """Three users whose pushes wait in the outbox (no after-commit push)."""
    monkeypatch.setattr("polar_sync.services.push.enqueue.outbox_enqueue", lambda **kw: None)
    return [make_user(email=f"u{n}@example.com") for n in range(3)]


@pytest.mark.parametrize("one_user", [False, True], ids=["drain_outbox", "push_user"])
def test_a_drain_stopped_by_a_refused_token_fails_the_task_and_keeps_the_rows(
    queued_users, polar_conf, one_user
):
    polar_conf(ACCESS_TOKEN="polar_oat_refused_by_the_server")
    if one_user:
        state, error = run_task(tasks.push_user, external_id=str(queued_users[0].pk))
    else:
        state, error = run_task(tasks.drain_outbox)
    assert state == states.FAILURE
    assert isinstance(error, PolarTaskFailed)
    assert "access token" in str(error)
    assert PushOutbox.objects.filter(status="pending").count() == len(queued_users)

    polar_conf(PUSH_ENABLED=False)  # a drain that does nothing on purpose is no failure
    state, result = run_task(tasks.drain_outbox)
    assert state == states.SUCCESS
    assert "disabled" in result["stopped"]


def test_a_drain_while_polar_is_down_fails_the_task(queued_users, live_polar, polar_conf):
    polar_conf(MAX_RETRIES=0)
    live_polar.faults.fail_rate = 1.0
    state, error = run_task(tasks.drain_outbox)
    assert state == states.FAILURE, error
    assert "unavailable" in str(error)


def test_a_drain_that_pushed_succeeds_and_logs_one_line(queued_users, caplog):
    with caplog.at_level(logging.INFO, logger="polar_sync"):
        state, result = run_task(tasks.drain_outbox)
    assert state == states.SUCCESS
    assert result["created"] == 3
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("drain_outbox")]
    assert lines == [lines[0]] and "3 pushed (3 created" in lines[0]
