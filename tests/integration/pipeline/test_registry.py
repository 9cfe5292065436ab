"""The bench registry's table on SQLite and PostgreSQL: add, refuse, list, schedule on."""

from __future__ import annotations

import pytest

from fastlims.benches import registry
from fastlims.bootstrap import System


def test_benches_are_added_refused_and_listed(system: System) -> None:
    with system.database.transaction() as session:
        registry.add(
            session=session,
            name="rig-7",
            kind="physical",
            capabilities=["thermal", "thermal", "500A"],
            ratings=registry.Ratings(max_current_A=500.0, max_voltage_V=60.0),
        )
        registry.add(session=session, name="veos-1", kind="virtual", calendar={"maintenance": []})
        for name, kind, message in (
            ("rig-7", "physical", "already exists"),
            ("rig 8", "physical", "cannot be a topic level"),
            ("rig-9", "robotic", "kind must be"),
        ):
            with pytest.raises(registry.BenchError, match=message):
                registry.add(session=session, name=name, kind=kind)
        with pytest.raises(registry.BenchError, match="7 weekdays"):
            registry.add(session=session, name="rig-10", kind="physical", calendar={"weekly_hours": []})
    with system.database.transaction() as session:
        records = registry.get_all(session=session)
        assert [(r.name, r.kind, r.capabilities) for r in records] == [
            ("rig-7", "physical", frozenset({"thermal", "500A"})),
            ("veos-1", "virtual", frozenset()),
        ]
        benches = registry.scheduling_benches(records, default_virtual=4, zone=system.settings.timezone)
    assert [b.bench_id for b in benches] == ["rig-7", "veos-1"]  # a registered virtual bench replaces the defaults
    assert benches[0].calendar.timezone == system.settings.timezone  # office hours in the lab's zone
