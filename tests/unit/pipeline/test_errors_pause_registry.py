"""Transient vs permanent errors, the test-only pause points, and the bench registry's calendars."""

from __future__ import annotations

import pickle
import threading
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from fastlims.benches import registry
from fastlims.intake.storage import StorageError
from fastlims.pipeline.errors import PermanentError, Stopped, TransientError, is_transient
from fastlims.pipeline.pause import ALL_POINTS, PausePoints, parse_points
from tests.services import wait_for


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("refused"),
        TimeoutError("slow"),
        OSError(5, "I/O error"),
        TransientError("set still arriving"),
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        StorageError("blob store unreachable"),
    ],
)
def test_transient_errors(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("doe", "no factors"),
        Stopped("doe", "cancelled"),
        FileNotFoundError("gone"),
        PermissionError("denied"),
        ValueError("bad"),
        KeyError("bug"),
        IntegrityError("INSERT", {}, Exception("duplicate")),
    ],
)
def test_permanent_errors(error: BaseException) -> None:
    assert not is_transient(error)


def test_step_errors_survive_pickling_as_dbos_records_them() -> None:
    error = pickle.loads(pickle.dumps(PermanentError("schedule", "no feasible schedule: run x")))
    assert (error.step, error.reason, str(error)) == (
        "schedule",
        "no feasible schedule: run x",
        "step schedule: no feasible schedule: run x",
    )
    stopped = pickle.loads(pickle.dumps(Stopped("dispatch", "request TR-1 is Cancelled")))
    assert str(stopped) == "stopped before dispatch: request TR-1 is Cancelled"


def test_pause_points_are_named_or_refused() -> None:
    assert parse_points(None) == frozenset()
    assert parse_points("*") == frozenset(ALL_POINTS) and len(ALL_POINTS) == 12
    assert parse_points(" doe:middle , dispatch:after") == {"doe:middle", "dispatch:after"}
    with pytest.raises(ValueError, match="doe:during"):
        parse_points("doe:during")
    with pytest.raises(ValueError, match="PAUSE_DIR"):
        PausePoints("doe:before", None)
    assert not PausePoints(None, None)


def test_a_pause_point_blocks_until_released(tmp_path: Path) -> None:
    points = PausePoints("doe:middle", tmp_path, poll_s=0.005)
    points.reached("u1", "doe", "before")  # not listed: returns at once
    done = threading.Event()
    worker = threading.Thread(target=lambda: (points.reached("u1", "doe", "middle"), done.set()))
    worker.start()
    marker = tmp_path / "u1" / "doe.middle.reached"
    wait_for(marker.exists, 5, "the pause point's marker")
    # It holds the step: polling every 5 ms, it would have gone on 40 times over by now.
    assert not done.wait(0.2)
    (tmp_path / "u1" / "doe.middle.go").touch()
    assert done.wait(5)
    worker.join()
    assert sorted(p.name for p in (tmp_path / "u1").iterdir()) == ["doe.middle.go", "doe.middle.reached"]


def test_calendars_default_by_kind_and_parse_every_field() -> None:
    assert registry.calendar_from_json(None, kind="virtual", zone="UTC").weekly_hours[0] == ((time(0), time(0)),)
    office = registry.calendar_from_json(None, kind="physical", zone="Europe/Berlin")
    assert office.timezone == "Europe/Berlin" and office.weekly_hours[5] == ()
    calendar = registry.calendar_from_json(
        {
            "timezone": "Europe/Berlin",
            "weekly_hours": [[["07:00", "12:00"], ["13:00", "19:00"]]] * 5 + [[], []],
            "closed_dates": ["2026-12-24"],
            "maintenance": [["2026-12-01T06:00:00Z", "2026-12-01T12:00:00Z"]],
        },
        kind="physical",
        zone="UTC",
    )
    assert calendar.weekly_hours[0] == ((time(7), time(12)), (time(13), time(19)))
    assert calendar.closed_dates == {date(2026, 12, 24)}
    assert calendar.maintenance == ((datetime(2026, 12, 1, 6, tzinfo=UTC), datetime(2026, 12, 1, 12, tzinfo=UTC)),)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"weekly_hours": [[]] * 6}, "7 weekdays"),
        ({"weekly_hours": [[["8am", "6pm"]]] * 7}, "not a time"),
        ({"maintenance": [["2026-12-01T06:00", "2026-12-01T07:00"]]}, "time zone"),
        ({"timezone": "Mars/Olympus"}, "IANA"),
        ({"weekly_hours": [[["18:00", "08:00"]]] * 7}, "ends before it starts"),
    ],
)
def test_bad_calendars_are_refused_with_the_reason(document: dict[str, object], message: str) -> None:
    with pytest.raises(registry.BenchError, match=message):
        registry.calendar_from_json(document, kind="physical", zone="UTC")


def test_default_virtual_benches_only_when_the_registry_has_none() -> None:
    rig = registry.BenchRecord(name="rig-1", kind="physical", capabilities_json='["thermal"]', is_active=True)
    benches = registry.scheduling_benches([rig], default_virtual=2, zone="UTC")
    assert [(b.bench_id, b.kind) for b in benches] == [
        ("rig-1", "physical"),
        ("virtual-1", "virtual"),
        ("virtual-2", "virtual"),
    ]
    assert benches[0].capabilities == {"thermal"}
    own = registry.BenchRecord(name="veos-a", kind="virtual", capabilities_json="[]", is_active=True)
    assert [b.bench_id for b in registry.scheduling_benches([rig, own], default_virtual=2, zone="UTC")] == [
        "rig-1",
        "veos-a",
    ]
