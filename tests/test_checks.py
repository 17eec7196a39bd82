"""System checks, through ``call_command("check")``."""

from __future__ import annotations

from dataclasses import fields
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.core.signals import setting_changed
from django.test import override_settings

from polar_sync.conf import PARSERS, PolarSyncSettings, polar_settings
from polar_sync.exceptions import PolarConfigurationError


def run_check() -> str:
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    return out.getvalue()


def check_fails(settings_value) -> str:
    with override_settings(POLAR_SYNC=settings_value):
        with pytest.raises(SystemCheckError) as info:
            run_check()
    return str(info.value)


def test_clean_with_a_token():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox"}):
        assert "no issues" in run_check()


def test_missing_token_warns_with_a_hint():
    with override_settings(POLAR_SYNC={"SERVER": "sandbox"}):
        output = run_check()
    assert "polar_sync.W002" in output
    assert "ACCESS_TOKEN" in output and "HINT" in output


def test_unknown_server():
    assert "polar_sync.E002" in check_fails({"ACCESS_TOKEN": "t", "SERVER": "staging"})


@pytest.mark.parametrize("size", [0, 101])
def test_page_size_out_of_range(size):
    assert "polar_sync.E003" in check_fails({"ACCESS_TOKEN": "t", "PAGE_SIZE": size})


def test_page_size_bounds_are_fine():
    for size in (1, 100):
        with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "PAGE_SIZE": size}):
            assert "no issues" in run_check()


def test_plain_http_that_is_not_loopback_warns():
    with override_settings(
        POLAR_SYNC={"ACCESS_TOKEN": "t", "SERVER": "http://polar.internal:8000"}
    ):
        assert "polar_sync.W001" in run_check()
    for loopback in ("http://127.0.0.1:8111", "http://localhost:8111", "http://[::1]:8111"):
        with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "SERVER": loopback}):
            assert "no issues" in run_check()


def test_unknown_key_and_bad_types():
    assert "polar_sync.E001" in check_fails({"ACCESS_TOKEN": "t", "TIMEOUTS": 3})
    assert "polar_sync.E001" in check_fails({"ACCESS_TOKEN": "t", "TIMEOUT": "soon"})
    assert "polar_sync.E005" in check_fails({"ACCESS_TOKEN": "t", "TIMEOUT": 0})


def test_settings_repr_hides_the_token():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "polar_oat_supersecret"}):
        text = repr(polar_settings())
    assert "supersecret" not in text and "ACCESS_TOKEN='***'" in text


def test_settings_are_read_at_call_time_and_reused_while_unchanged():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "TIMEOUT": 3}):
        first = polar_settings()
        assert first.TIMEOUT == 3
        assert polar_settings() is first  # unchanged: not validated again
        from django.conf import settings

        settings.POLAR_SYNC["TIMEOUT"] = 7  # changed in place, not replaced
        assert polar_settings().TIMEOUT == 7
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "TIMEOUT": 5}):
        assert polar_settings().TIMEOUT == 5


def test_every_setting_is_checked_by_a_parser_named_for_it():
    assert set(PARSERS) == {f.name for f in fields(PolarSyncSettings)}
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "USER_FIELDS": "email"}):
        with pytest.raises(PolarConfigurationError, match=r"USER_FIELDS.*a list of field names"):
            polar_settings()


def test_an_announced_change_of_the_settings_is_read_again():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t"}):
        first = polar_settings()
        assert polar_settings() is first
        setting_changed.send(sender=None, setting="POLAR_SYNC", value={}, enter=True)
        assert polar_settings() is not first
        assert polar_settings() == first


class UsersElsewhere:
    """A router writing the user model to another database than polar_sync's tables."""

    def db_for_write(self, model, **hints):
        return "users" if model._meta.label == "auth.User" else None


def test_users_and_the_outbox_on_different_databases_warn():
    token = {"ACCESS_TOKEN": "polar_oat_x", "SERVER": "sandbox"}
    with override_settings(POLAR_SYNC=token):
        assert "W004" not in run_check()
        with override_settings(DATABASE_ROUTERS=[f"{__name__}.UsersElsewhere"]):
            output = run_check()
            assert "polar_sync.W004" in output and "'users'" in output
            with override_settings(POLAR_SYNC={**token, "PUSH_ENABLED": False}):
                assert "W004" not in run_check()


@pytest.mark.parametrize(
    "conf",
    [
        {"LOCK_TIMEOUT": 20},  # under the floor of 30 seconds
        {"LOCK_TIMEOUT": 90, "TIMEOUT": 60},  # a live run may go 70s between heartbeats
    ],
)
def test_a_lock_timeout_a_live_run_could_miss_is_an_error(conf):
    output = check_fails({"ACCESS_TOKEN": "t", **conf})
    assert "polar_sync.E004" in output and "LOCK_TIMEOUT" in output and "TIMEOUT" in output


def test_the_default_lock_timeout_is_90_seconds_and_passes():
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t"}):
        assert polar_settings().LOCK_TIMEOUT == 90
        assert "no issues" in run_check()
    with override_settings(POLAR_SYNC={"ACCESS_TOKEN": "t", "LOCK_TIMEOUT": 140, "TIMEOUT": 60}):
        assert "no issues" in run_check()
