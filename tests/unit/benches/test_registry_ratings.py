"""The registry's ratings as the scheduler sees them, and the checks on what a lab manager enters."""

from __future__ import annotations

import pytest

from fastlims.benches import registry
from fastlims.scheduling import RunNeeds

HOT_CELL = RunNeeds(uut_format="cell", current_A=5.0, min_voltage_V=2.5, max_voltage_V=4.2, temperature_chamber=True)


def _record(name: str, kind: str, **ratings: object) -> registry.BenchRecord:
    record = registry.BenchRecord(name=name, kind=kind, capabilities_json="[]", is_active=True)
    for key, value in {"channels": 1, "temperature_chamber": False, **ratings}.items():
        setattr(record, key, value)
    return record


def test_virtual_benches_set_the_ambient_through_the_fmus_and_physical_ones_need_a_chamber() -> None:
    records = [
        _record("rig-1", "physical", max_current_A=50.0, min_voltage_V=0.0, max_voltage_V=5.0),
        _record("veos-1", "virtual"),
    ]
    rig, veos = registry.scheduling_benches(records, default_virtual=4, zone="UTC")
    assert rig.ratings.shortfalls(HOT_CELL) == ["no temperature chamber"]
    assert veos.ratings.shortfalls(HOT_CELL) == []
    defaults = registry.scheduling_benches(records[:1], default_virtual=2, zone="UTC")[1:]
    assert [b.bench_id for b in defaults] == ["virtual-1", "virtual-2"]
    assert all(b.ratings.shortfalls(HOT_CELL) == [] for b in defaults)


@pytest.mark.parametrize(
    ("kind", "ratings", "message"),
    [
        ("physical", registry.Ratings(max_current_A=10.0), "needs max_voltage_V"),
        ("physical", registry.Ratings(max_voltage_V=10.0), "needs max_current_A"),
        ("virtual", registry.Ratings(max_current_A=float("nan")), "max_current_A must be a finite number"),
        ("virtual", registry.Ratings(max_current_A=0.0), "max_current_A must be above 0 A"),
        ("virtual", registry.Ratings(min_voltage_V=5.0, max_voltage_V=4.0), "must be below max_voltage_V"),
        ("virtual", registry.Ratings(channels=0), "channels must be 1..1024"),
    ],
)
def test_bad_ratings_are_refused_naming_the_field(kind: str, ratings: registry.Ratings, message: str) -> None:
    with pytest.raises(registry.BenchError, match=message):
        registry.check_ratings("rig-x", kind, ratings)


def test_a_physical_bench_measures_from_zero_volts_unless_told() -> None:
    rated = registry.check_ratings("rig-x", "physical", registry.Ratings(max_current_A=10.0, max_voltage_V=5.0))
    assert rated.min_voltage_V == 0.0
