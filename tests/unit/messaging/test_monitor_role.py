"""The monitor role: an integrator's read-only view of the benches, on both brokers' policy."""

from __future__ import annotations

from fastlims.messaging.acl import acl_for, allowed, mosquitto_acl
from fastlims.messaging.models import MqttRole

P = "fastest/v1"


def test_a_monitor_reads_every_bench_and_run_and_publishes_nothing() -> None:
    acl = acl_for(MqttRole.monitor, "dash", P)
    assert allowed(acl, f"{P}/benches/+/runs/+/metrics", publish=False)
    assert allowed(acl, f"{P}/benches/emu-1/state", publish=False)
    assert not allowed(acl, f"{P}/benches/emu-1/commands", publish=False)  # not a bench's commands
    assert not allowed(acl, f"{P}/partners/acme/#", publish=False)  # nor a partner's requests
    assert not allowed(acl, f"{P}/#", publish=False)
    for topic in (f"{P}/benches/emu-1/commands", f"{P}/benches/emu-1/runs/r/metrics", f"{P}/errors"):
        assert not allowed(acl, topic, publish=True)
    rendered = mosquitto_acl([("dash", MqttRole.monitor)], P)
    assert "user dash\ntopic read fastest/v1/benches/+/state\ntopic read fastest/v1/benches/+/runs/#" in rendered
    assert "topic write" not in rendered
