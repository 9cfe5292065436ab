"""The child's channel carries frames of a fixed format, never pickle: the parent decodes only
JSON headers and float64 data, and refuses anything else with a reason."""

from __future__ import annotations

import multiprocessing.connection
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from fastlims.benches.cosim import Batch, RunResult, SimulationSpec, channel, run_in_subprocess
from fastlims.benches.cosim.isolated import Sandbox
from fastlims.peers.fmus import build_fmu

CELL_TO_CYCLER = [{"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"}]


def a_batch() -> Batch:
    time = np.arange(5, dtype=float)
    return Batch(seq=3, first_row=15, time=time, signals={"Cell.V": time * 0.1 + 3.0, "Cell.I": -time},
                 units={"Cell.V": "V", "Cell.I": "A"})  # fmt: skip


def test_a_batch_crosses_exactly() -> None:
    kind, header, data = channel.decode(channel.encode_batch(a_batch()))
    assert kind == "batch"
    got = channel.decode_batch(header, data)
    assert (got.seq, got.first_row, got.units) == (3, 15, {"Cell.V": "V", "Cell.I": "A"})
    np.testing.assert_array_equal(got.time, a_batch().time)
    np.testing.assert_array_equal(got.signals["Cell.V"], a_batch().signals["Cell.V"])


def test_a_result_crosses_with_its_fields() -> None:
    result = RunResult(status="failed", reason="FMU 'Cell' returned an error", end_cause="error", stopped_at=36.0,
                       columns={}, units={"time": "s"}, steps=36, wall_time_s=0.5, step_size=1.0,
                       algorithm="jacobi", parameters={"Cell.SOC0": 0.8}, batches=2, notes=["a note"])  # fmt: skip
    kind, header, data = channel.decode(channel.encode_result(result))
    got = channel.decode_result(header, data)
    assert (kind, got.status, got.reason, got.stopped_at, got.steps, got.parameters, got.notes) == (
        "result", "failed", "FMU 'Cell' returned an error", 36.0, 36, {"Cell.SOC0": 0.8}, ["a note"]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (pickle.dumps(("batch", {"seq": 0})), "header of"),
        (struct.pack("<I", 9) + b'{"kind": ', "not JSON"),
        (channel.encode("run_code", {}), "unknown kind"),
    ],
)
def test_anything_but_a_frame_is_refused(frame: bytes, problem: str) -> None:
    with pytest.raises(channel.ChannelError, match=problem):
        channel.decode(frame)


def test_a_batch_whose_data_does_not_match_its_header_is_refused() -> None:
    kind, header, data = channel.decode(channel.encode_batch(a_batch()))
    header["rows"] = 6
    with pytest.raises(channel.ChannelError, match="bytes of data for 6 rows"):
        channel.decode_batch(header, data)
    with pytest.raises(channel.ChannelError, match="'status' must be one of"):
        channel.decode_result({"status": "owned", "rows": 0, "names": []}, memoryview(b""))


def test_the_parent_never_unpickles_what_the_child_sends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way to unpickle in the parent raises: a real sandboxed run still completes, every
    row received."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the parent unpickled data from the simulation child")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(multiprocessing.connection.Connection, "recv", refuse)
    fmus = {
        "Cycler": build_fmu("cycler", "2.0", tmp_path, name="Cycler", cache_dir=tmp_path / "cache"),
        "Cell": build_fmu("battery_cell", "2.0", tmp_path, name="Cell", cache_dir=tmp_path / "cache"),
    }
    spec = SimulationSpec(step_size=1.0, stop_time=600.0, parameters={"Cycler.mode": 1, "Cycler.current_A": 5.0})
    received: list[Batch] = []
    result = run_in_subprocess(fmus, CELL_TO_CYCLER, spec, received.append, batch_rows=100, timeout_s=60,
                               sandbox=Sandbox(mode="namespaces"))  # fmt: skip
    assert result.status == "completed", result.reason
    assert result.rows == 601 and [b.seq for b in received] == list(range(7))
    np.testing.assert_array_equal(result.columns["time"], np.arange(601.0))


def test_batches_out_of_order_or_past_the_run_s_points_are_refused() -> None:
    from fastlims.benches.cosim.isolated import _Received

    first = Batch(seq=0, first_row=0, time=np.arange(5.0), signals={"Cell.V": np.ones(5)}, units={})
    received = _Received(keep=False, max_rows=8)
    received.add(first)
    with pytest.raises(channel.ChannelError, match="metrics batch 2 arrived after 0"):
        received.add(Batch(seq=2, first_row=5, time=np.arange(5.0), signals={"Cell.V": np.ones(5)}, units={}))
    with pytest.raises(channel.ChannelError, match="other signals than the first"):
        received.add(Batch(seq=1, first_row=5, time=np.arange(5.0), signals={"Cell.I": np.ones(5)}, units={}))
    with pytest.raises(channel.ChannelError, match=r"more rows \(10\) than the run has points \(8\)"):
        received.add(Batch(seq=1, first_row=5, time=np.arange(5.0), signals={"Cell.V": np.ones(5)}, units={}))
