"""Results files: Parquet round trip with metadata, the CSV download, and the run summary checked
against independent integrations."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from fastlims.benches.cosim import RunResult, SimulationSpec, run
from fastlims.runs import results

from .conftest import BuildFmu
from .cosim_testkit import cell_system, profile


@pytest.fixture(scope="module")
def pulse_run(build: BuildFmu) -> RunResult:
    """Discharge 5 A for 600 s, rest, charge 2.5 A for 600 s (a full-resolution run, 0.5 s steps)."""
    pulses = profile("Cycler/current_setpoint", [(0, 5.0), (600, 0.0), (900, -2.5), (1500, 0.0), (1600, 0.0)])
    spec = SimulationSpec(
        step_size=0.5, profiles=[pulses], profile_interpolation="previous", parameters={"Cell.SOC0": 0.8}
    )
    with cell_system(build, "3.0") as system:
        result = run(system, spec)
    assert result.status == "completed", result.reason
    return result


def test_parquet_round_trip_keeps_values_units_and_metadata(pulse_run: RunResult, tmp_path: Path) -> None:
    path = tmp_path / "simulation-results" / "run-001" / "results.parquet"
    results.write_run(path, pulse_run, run_id="run-001")
    back = results.read_parquet(path)
    assert list(back.columns) == list(pulse_run.columns)
    for name, values in pulse_run.columns.items():
        np.testing.assert_array_equal(back.columns[name], values)  # exact doubles
    assert back.units == pulse_run.units
    assert back.run_id == "run-001"
    assert back.parameters == {"Cell.SOC0": 0.8}
    assert back.metadata["format"] == results.FORMAT
    assert back.metadata["units"]["Cell.V"] == "V"
    assert set(back.metadata["fmus"]) == {"Cycler", "Cell"} and back.metadata["fmus"]["Cell"]["fmi_version"] == "3.0"
    assert back.metadata["run"]["status"] == "completed" and back.metadata["run"]["stopped_at_s"] == 1600.0
    assert (
        results.read_parquet(results.parquet_bytes(pulse_run, run_id="run-001")).columns.keys() == back.columns.keys()
    )
    assert not list(path.parent.glob(".*"))  # the temporary file is gone


def test_csv_download_streams_every_row_with_units_in_the_header(pulse_run: RunResult, tmp_path: Path) -> None:
    path = tmp_path / "run.parquet"
    results.write_run(path, pulse_run, run_id="run-002")
    pieces = list(results.iter_csv(path, batch_rows=1000))
    assert len(pieces) == 4  # 3201 rows in batches of 1000
    rows = list(csv.reader(io.StringIO(b"".join(pieces).decode())))
    assert rows[0][:3] == ["time [s]", "Cycler.current_setpoint [A]", "Cycler.current [A]"]
    assert "Cell.SOC [1]" in rows[0]
    assert len(rows) == 1 + pulse_run.rows
    v = rows[0].index("Cell.V [V]")
    np.testing.assert_array_equal([float(r[v]) for r in rows[1:]], pulse_run.columns["Cell.V"])  # shortest exact text
    out = io.BytesIO()
    results.to_csv(path, out)
    assert out.getvalue() == b"".join(pieces)


def test_summary_matches_independent_integrations(pulse_run: RunResult) -> None:
    summary = results.summarize(pulse_run.columns, pulse_run.units)
    cell = summary["cells"]["Cell"]
    assert cell["voltage"] == "Cell.V" and cell["current"] == "Cell.I"
    # Analytic: 5 A x 600 s out, 2.5 A x 600 s in.
    assert cell["charge_throughput_Ah"] == pytest.approx((5.0 * 600 + 2.5 * 600) / 3600, rel=1e-12)
    assert cell["net_charge_Ah"] == pytest.approx((5.0 * 600 - 2.5 * 600) / 3600, rel=1e-12)
    # The cycler integrates its own current inside the FMU: an independent integrator.
    assert cell["net_charge_Ah"] == pytest.approx(pulse_run.columns["Cycler.charge_Ah"][-1], rel=1e-12)
    # Energy: the trapezoidal rule on V·I within each constant-current segment (independent of the
    # summary's hold-each-sample rule; they agree to the step's share of the voltage change).
    t, v, i = (pulse_run.columns[n] for n in ("time", "Cell.V", "Cell.I"))
    energy = 0.0
    for start, end in ((0, 600), (900, 1500)):
        inside = (t >= start) & (t < end)
        ts, p = t[inside], np.abs(v[inside] * i[inside])
        energy += (np.sum((p[1:] + p[:-1]) / 2 * np.diff(ts)) + p[-1] * (end - ts[-1])) / 3600
    assert cell["energy_throughput_Wh"] == pytest.approx(energy, rel=1e-3)
    assert 5.0 * 600 / 3600 * 3.3 < cell["energy_throughput_Wh"] < (5.0 * 600 + 2.5 * 600) / 3600 * 4.2
    soc = summary["signals"]["Cell.SOC"]
    assert (
        soc["unit"] == "1"
        and soc["max"] == pytest.approx(0.8)
        and soc["final"] == pytest.approx(0.8 - (5.0 - 2.5) * 600 / 3600 / 5.0, abs=1e-12)
    )
    assert soc["min"] == pytest.approx(0.8 - 5.0 * 600 / 3600 / 5.0, abs=1e-12)
    assert summary["samples"] == pulse_run.rows and summary["end_s"] == 1600.0
    assert "time" not in summary["signals"]


def test_summary_of_a_run_carries_its_outcome_and_is_json(pulse_run: RunResult) -> None:
    import json

    summary = results.summarize_run(pulse_run)
    assert summary["run"]["status"] == "completed" and summary["format"] == results.SUMMARY_FORMAT
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_cells_are_found_by_units_when_the_names_differ() -> None:
    columns = {
        "time": np.array([0.0, 1.0, 2.0]),
        "Pack.U_term": np.array([4.0, 3.9, 3.8]),
        "Pack.I_load": np.array([1.0, 1.0, 1.0]),
    }
    units = {"time": "s", "Pack.U_term": "V", "Pack.I_load": "A"}
    cells = results.summarize(columns, units)["cells"]
    assert cells["Pack"]["charge_throughput_Ah"] == pytest.approx(2.0 / 3600)
    assert cells["Pack"]["energy_throughput_Wh"] == pytest.approx((4.0 + 3.9) / 3600)


def test_a_streamed_run_that_got_no_batch_still_writes_a_results_file(tmp_path: Path) -> None:
    """A child killed before its first batch: the file holds no rows and says how the run ended."""
    result = RunResult(status="failed", reason="the run exceeded its wall-time limit of 3 s", end_cause="timeout",
                       stopped_at=0.0, columns={}, units={"time": "s"}, steps=0, wall_time_s=3.1, step_size=1.0,
                       algorithm="jacobi")  # fmt: skip
    writer = results.ResultsWriter(tmp_path / "results.parquet", run_id="r-1")
    writer.close(result)
    stored = results.read_parquet(tmp_path / "results.parquet")
    assert len(stored.columns["time"]) == 0 and stored.run_id == "r-1"
    assert stored.metadata["run"]["end_cause"] == "timeout"
