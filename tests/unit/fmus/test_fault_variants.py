"""The deliberately faulty variants fail exactly as designed: crash, error and NaN at fault_time_s."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from fastlims.peers.fmus import FMI_VERSIONS

from .fmu_testkit import Cosim, FMICallException

FmuPath = Callable[[str, str], Path]
TESTS_ROOT = Path(__file__).parents[3]

# Runs in a child process: step a crash variant 1 s at a time, printing each reached time.
CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from tests.unit.fmus.fmu_testkit import Cosim
    cosim = Cosim(sys.argv[1]).initialize(fault_time_s=float(sys.argv[3]))
    while cosim.time < 20.0:
        cosim.step(1.0)
        print(f"reached {cosim.time:g}", flush=True)
    cosim.close()
    print("finished", flush=True)
    """
)


def run_crash_variant(path: Path, fault_time: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CRASH_SCRIPT, str(path), str(TESTS_ROOT), str(fault_time)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", ["battery_cell_crash", "cycler_crash", "lfp_cell_crash"])
def test_crash_variant_dies_with_sigsegv_in_the_step_passing_the_fault_time(
    fmu: FmuPath, model: str, fmi_version: str
) -> None:
    result = run_crash_variant(fmu(model, fmi_version), fault_time=5.5)
    assert result.returncode == -signal.SIGSEGV, result.stderr
    assert result.stdout.split("\n")[-2] == "reached 5"  # the step 5 -> 6 passes 5.5


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_crash_variant_runs_normally_before_the_fault_time(fmu: FmuPath, fmi_version: str) -> None:
    """In-process on purpose: nothing crashes while the time stays at or before fault_time_s."""
    with Cosim(fmu("battery_cell_crash", fmi_version)).initialize(fault_time_s=20.0, I=5.0) as c:
        c.run(20.0, 1.0)
        assert c.value("SOC") == pytest.approx(1.0 - 100.0 / 18000.0, abs=1e-12)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize("model", ["battery_cell_error", "cycler_error", "lfp_cell_error"])
def test_error_variant_fails_the_step_passing_the_fault_time(fmu: FmuPath, model: str, fmi_version: str) -> None:
    with Cosim(fmu(model, fmi_version), instance_name="faulty").initialize(fault_time_s=5.5) as c:
        c.run(5.0, 1.0)
        assert c.errors() == []
        with pytest.raises(FMICallException, match="status 3"):
            c.step(1.0)
        assert c.errors() == [
            "faulty: deliberate error (error variant) in the step from t=5 s to t=6 s, which passes fault_time_s=5.5 s"
        ]
        with pytest.raises(FMICallException):
            c.step(1.0)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
def test_error_variant_reads_its_default_fault_time_from_the_description(fmu: FmuPath, fmi_version: str) -> None:
    with Cosim(fmu("cycler_error", fmi_version)).initialize() as c:
        assert c.value("fault_time_s") == 10.0
        c.run(10.0, 2.5)
        with pytest.raises(FMICallException):
            c.step(2.5)


@pytest.mark.parametrize("fmi_version", FMI_VERSIONS)
@pytest.mark.parametrize(
    ("model", "outputs"),
    [
        ("battery_cell_nan", ("V", "SOC", "T")),
        ("cycler_nan", ("current",)),
        ("lfp_cell_nan", ("u_mV", "soc_pct", "t_cell_degC")),
    ],
)
def test_nan_variant_outputs_nan_once_past_the_fault_time(
    fmu: FmuPath, model: str, outputs: tuple[str, ...], fmi_version: str
) -> None:
    with Cosim(fmu(model, fmi_version)).initialize(fault_time_s=3.0) as c:
        before = c.run(3.0, 1.0, outputs)
        after = c.run(2.0, 1.0, outputs)
        parameter = next(v.name for v in c.description.modelVariables if v.causality == "parameter")
        assert math.isfinite(c.value(parameter))  # only outputs go bad
        assert c.errors() == []  # silently: detecting it is the master's job
    assert all(math.isfinite(x) for x in before[:, 1:].flat)
    assert all(math.isnan(x) for x in after[:, 1:].flat)
