"""The CONNECT rules on their own: client ids bound to usernames, and the guessing lockout."""

from __future__ import annotations

from fastlims.messaging.guard import (
    Throttle,
    ThrottlePolicy,
    client_id_belongs,
    client_id_for,
    lims_client_suffix,
)


def test_a_client_id_belongs_to_its_username_only() -> None:
    assert client_id_belongs("comau-dt", "comau-dt")
    assert client_id_belongs("comau-dt", "comau-dt/dt-1")
    assert client_id_belongs("comau-dt", client_id_for("comau-dt", "x"))
    assert not client_id_belongs("comau-dt", "comau-dt-2")  # a prefix of another name is not enough
    assert not client_id_belongs("comau", "comau-dt/x")
    assert not client_id_belongs("comau-dt", "")
    assert not client_id_belongs("comau-dt", "amqtt/generated")
    assert not client_id_belongs("comau-dt", "comau-dt/" + "x" * 200)


def test_the_lims_suffix_is_stable_per_key_and_differs_between_keys() -> None:
    assert lims_client_suffix("key-one") == lims_client_suffix("key-one")
    assert lims_client_suffix("key-one") != lims_client_suffix("key-two")
    assert "key-one" not in lims_client_suffix("key-one")


def test_ten_failures_lock_the_account_and_the_address_until_the_lock_ends() -> None:
    throttle = Throttle(ThrottlePolicy(max_failures=10, lock_s=900))
    for second in range(10):
        assert throttle.locked("dt", "10.0.0.1", now=float(second)) is None
        throttle.failed("dt", "10.0.0.1", now=float(second))
    assert throttle.locked("dt", "10.0.0.9", now=10.0) == "account"
    assert throttle.locked("other", "10.0.0.1", now=10.0) == "address"
    assert throttle.locked("other", "10.0.0.9", now=10.0) is None
    # The lock lasts lock_s after the last failure, then the slate is clean.
    assert throttle.locked("dt", "10.0.0.1", now=9.0 + 899) is not None
    assert throttle.locked("dt", "10.0.0.1", now=9.0 + 900) is None


def test_failures_spread_wider_than_the_lock_never_add_up() -> None:
    throttle = Throttle(ThrottlePolicy(max_failures=3, lock_s=60))
    for minute in range(10):
        throttle.failed("dt", None, now=minute * 61.0)
        assert throttle.locked("dt", None, now=minute * 61.0) is None


def test_a_success_clears_the_account_but_not_the_address() -> None:
    throttle = Throttle(ThrottlePolicy(max_failures=2, lock_s=60))
    throttle.failed("dt", "10.0.0.1", now=0.0)
    throttle.failed("other", "10.0.0.1", now=1.0)
    throttle.succeeded("dt")
    assert throttle.locked("dt", "10.0.0.2", now=2.0) is None
    assert throttle.locked("dt", "10.0.0.1", now=2.0) == "address"


def test_idle_keys_are_forgotten() -> None:
    throttle = Throttle(ThrottlePolicy(max_failures=2, lock_s=60))
    for n in range(100):
        throttle.failed(f"name-{n}", f"10.0.{n}.1", now=0.0)
        throttle.failed(f"name-{n}", f"10.0.{n}.1", now=0.0)
    throttle.forget_idle(now=61.0)
    assert throttle._failures == {} and throttle._locked_until == {}
