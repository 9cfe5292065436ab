"""The fast path's seam for code in the loop (a closed-loop controller): one prepared call per
point, made after the exchange has read every output into the row and before the FMUs step."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from fastlims.benches.cosim import RowCall, SimulationSpec, run
from fastlims.benches.cosim.plan import make_plan

from .conftest import BuildFmu
from .cosim_testkit import cell_system, constant_current

ROW_FUNCTION = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


class Probe:
    """A row call written in Python: reads the time and one column, answers a fixed status from
    a given time on."""

    def __init__(self, column: int, width: int, status_from: tuple[float, int] | None = None) -> None:
        self.column, self.width, self.status_from = column, width, status_from
        self.seen: list[tuple[float, float]] = []
        self.states: set[int] = set()
        self.function = ROW_FUNCTION(self._call)
        self.state = ctypes.c_double(0.0)

    def _call(self, state: int, row: int) -> int:
        self.states.add(state)
        cells = ctypes.cast(row, ctypes.POINTER(ctypes.c_double * self.width)).contents
        self.seen.append((cells[0], cells[self.column]))
        if self.status_from is not None and cells[0] >= self.status_from[0]:
            return self.status_from[1]
        return 0

    def row_call(self) -> RowCall:
        return RowCall("probe", self.function, ctypes.byref(self.state))


@pytest.mark.parametrize("algorithm", ["jacobi", "gauss_seidel"])
def test_a_row_call_sees_every_point_after_the_exchange_and_before_the_step(build: BuildFmu, algorithm: str) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=30.0, parameters=constant_current(5.0), algorithm=algorithm)
    with cell_system(build, "2.0") as system:
        plan = make_plan(system, spec)
        probe = Probe(plan.signals["Cell.V"][0], plan.width)
        result = run(system, spec, row_calls=[probe.row_call()])
    assert result.status == "completed", result.reason
    # Every point with a step, in order (the last point is an exchange without a step), seeing the
    # cell's voltage as recorded at that point: read by the exchange before any FMU stepped.
    assert [t for t, _ in probe.seen] == list(result.columns["time"][:-1])
    assert np.array_equal([v for _, v in probe.seen], result.columns["Cell.V"][:-1])
    assert len(probe.states) == 1 and probe.states != {None}  # its state pointer, every time


def test_a_failing_row_call_ends_the_run_naming_it_with_the_rows_before_it(build: BuildFmu) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=30.0, parameters=constant_current(5.0))
    with cell_system(build, "2.0") as system:
        plan = make_plan(system, spec)
        probe = Probe(plan.signals["Cell.V"][0], plan.width, status_from=(5.0, 3))
        result = run(system, spec, row_calls=[probe.row_call()])
    assert result.status == "failed" and result.end_cause == "error"
    assert result.reason == "the row call 'probe' returned status 3 at t=5 s"
    assert list(result.columns["time"]) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # its own point's exchange stands


def test_a_row_call_warning_is_noted_and_the_run_goes_on(build: BuildFmu) -> None:
    spec = SimulationSpec(step_size=1.0, stop_time=10.0, parameters=constant_current(5.0))
    with cell_system(build, "2.0") as system:
        plan = make_plan(system, spec)
        probe = Probe(plan.signals["Cell.V"][0], plan.width, status_from=(8.0, 1))
        result = run(system, spec, row_calls=[probe.row_call()])
    assert result.status == "completed" and result.rows == 11
    assert "the row call 'probe' warned at t=8 s" in result.notes
    assert "the row call 'probe' warned at t=9 s" in result.notes
