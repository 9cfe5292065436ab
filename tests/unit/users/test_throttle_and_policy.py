"""The login throttle (pure, on a fake clock), the password policy and token durations."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fastlims.users.commands import parse_duration
from fastlims.users.security import DEMO_PASSWORD, check_password_policy
from fastlims.users.throttle import LoginThrottle, ThrottlePolicy, wait_message


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_eleventh_attempt_is_refused_and_the_lock_ends() -> None:
    clock = Clock()
    throttle = LoginThrottle(ThrottlePolicy(max_failures=10, lockout_s=900), clock)
    for _ in range(9):
        throttle.failed("rita", "10.0.0.1")
        assert throttle.retry_after("rita", "10.0.0.1") is None
    throttle.failed("rita", "10.0.0.1")  # the 10th failure locks
    assert throttle.retry_after("rita", "10.0.0.1") == 900
    assert throttle.retry_after("RITA", "10.0.0.9") == 900  # per account, whatever the address or case
    clock.now += 600
    throttle.failed("rita", "10.0.0.1")  # refused attempts do not extend the lock
    assert throttle.retry_after("rita", None) == 300
    clock.now += 300
    assert throttle.retry_after("rita", "10.0.0.1") is None


def test_failures_older_than_the_window_are_forgotten_and_success_clears() -> None:
    clock = Clock()
    throttle = LoginThrottle(ThrottlePolicy(max_failures=3, lockout_s=100), clock)
    throttle.failed("otto", None)
    throttle.failed("otto", None)
    clock.now += 101
    throttle.failed("otto", None)
    assert throttle.retry_after("otto", None) is None  # only one failure in the window
    throttle.failed("otto", None)
    throttle.succeeded("otto")
    throttle.failed("otto", None)
    assert throttle.retry_after("otto", None) is None


def test_an_address_guessing_many_accounts_is_locked() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_failures=10, max_failures_per_address=5), Clock())
    for index in range(5):
        throttle.failed(f"user{index}", "10.0.0.66")
    assert throttle.retry_after("someone-else", "10.0.0.66") is not None
    assert throttle.retry_after("someone-else", "10.0.0.7") is None
    throttle.succeeded("user0")  # a good login does not reset the address
    assert throttle.retry_after("user0", "10.0.0.66") is not None


def test_the_table_is_bounded() -> None:
    throttle = LoginThrottle(ThrottlePolicy(max_keys=50), Clock())
    for index in range(1000):
        throttle.failed(f"name{index}", None)
    assert len(throttle._entries) == 50


def test_wait_message_names_the_minutes() -> None:
    assert "15 more minutes" in wait_message(900) and "1 more minute." in wait_message(30)


@pytest.mark.parametrize(
    ("password", "username", "display_name", "rule"),
    [
        ("short", "rita", None, "at least 10"),
        (DEMO_PASSWORD, "rita", None, "demo password"),
        ("my-" + DEMO_PASSWORD.upper() + "!", "rita", None, "demo password"),
        ("rita-is-great-2026", "rita", None, "own name"),
        ("Maria Lopez 2026!", "mlopez", "Maria Lopez", "own name"),
        ("LOPEZ-secret-123", "mlopez", "Maria Lopez", "own name"),
    ],
)
def test_password_policy_refuses(password: str, username: str, display_name: str | None, rule: str) -> None:
    with pytest.raises(ValueError, match=rule):
        check_password_policy(password, username=username, display_name=display_name)


def test_password_policy_accepts_a_good_password() -> None:
    check_password_policy("correct-horse-battery", username="rita", display_name="Rita Al")


def test_token_durations() -> None:
    assert parse_duration("90d") == timedelta(days=90)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("", "90", "d", "0d", "-1d", "1y", "1.5d"):
        with pytest.raises(ValueError, match="is not a duration"):
            parse_duration(bad)
