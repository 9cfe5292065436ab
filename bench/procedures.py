# ruff: noqa: E402 - the repository root must be on sys.path before tests.* and bench.* are imported
"""Benchmark of test procedures on the virtual bench: the closed loop against the open-loop
master, and a real virtual run end to end against the master alone, on the same 2-FMU system.

Run: ``PYTHONPATH=src:. python bench/procedures.py [--steps N] [--repeats R]`` (writes
``bench/results/procedures.json``; a few minutes).

The system is the reference pair (a cycler channel driving an equivalent-circuit cell, FMI 2.0),
stepped at 1 s, ``--steps`` communication points (default 450,000, the issue's figure).

* **Closed loop vs open loop** (in this process, paired repeats, medians). Open loop: the master
  alone with the cycler in constant-current mode (no input set per point: the fastest the master
  goes) and, second, driving the same input from a profile (a set per point, as the seed's
  ``custom_profile`` does). Closed loop: the same system running a procedure (charge and discharge
  at C/2 with rests, a repeat) through the C controller; the controller reads the voltage, keeps
  the Battery Data Format counters and sets the next point's current itself. Steps/s of the
  stepping loop (set-up excluded). Target: closed ≥ 0.7 × open.
* **End to end vs the master alone.** The master alone: the closed-loop procedure in a sandboxed
  child process (``run_in_subprocess``, as the worker runs it), no metrics. End to end: the same
  procedure as a real virtual run through the worker: a request at ScheduleReady, its run queued
  on a bench's DBOS queue, the worker takes it, simulates in a child process, publishes every
  recorded sample as MetricsBatch messages on MQTT (Mosquitto; an independent paho subscriber
  counts every sample), writes the Parquet file and the summary with the outcomes, records the
  run. The clock runs from the enqueue to the run's row saying completed. Target: end to end
  ≥ 0.5 × the master alone. The time is split into its parts (queue pick-up, child start, the
  stepping loop, results and record) from the worker's own timestamps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import load_average, machine_info

OUT = ROOT / "bench" / "results" / "procedures.json"
PORTS = {
    "current": "Cycler/current_setpoint",
    "voltage": "Cell/V",
    "temperature": "Cell/T",
    "soc": "Cell/SOC",
    "ambient_temperature": "Cell/T_ambient_K",
}
CONNECTIONS = [{"OutSignalReference": "Cycler/current", "InSignalReference": "Cell/I"}]


def procedure_text(steps: int) -> str:
    """Charge and discharge at C/2 with rests, repeated to fill ``steps`` seconds at 1 s."""
    cycle = 3000
    repeats = max(1, steps // cycle)
    return (
        f"Repeat {repeats} times:\n"
        "    Discharge at C/2 for 1000 s\n"
        "    Rest for 500 s\n"
        "    Charge at C/2 for 1000 s\n"
        "    Rest for 500 s\n"
    )


def ratings() -> Any:
    from tests.integration.benches.conftest import CELL

    return CELL


def program(steps: int) -> tuple[Any, Any]:
    from fastlims.procedures.compiler import compile_procedure
    from fastlims.procedures.resolve import resolve
    from fastlims.procedures.text import load

    parsed = load(procedure_text(steps))
    resolved = resolve(parsed.procedure, ratings(), lines=parsed.lines)
    return resolved, compile_procedure(resolved)


def loop_rates(fmus: dict[str, Path], steps: int, repeats: int) -> dict[str, Any]:
    from fastlims.benches.cosim import SimulationSpec, load_system, run
    from fastlims.benches.cosim.spec import ProcedureRun
    from fastlims.messaging.variables import CustomProfile

    _, compiled = program(steps)
    closed = SimulationSpec(
        step_size=1.0,
        stop_time=float(steps + 10),
        parameters={"Cell.SOC0": 0.5},
        procedure=ProcedureRun(program=compiled, ports=PORTS, current_sign="discharge_positive"),
    )
    constant = SimulationSpec(
        step_size=1.0, stop_time=float(steps), parameters={"Cycler.mode": 1, "Cycler.current_A": 0.01, "Cell.SOC0": 0.9}
    )
    points = [{"timestamp": t, "value": 2.5 if (t // 1500) % 2 == 0 else -2.5} for t in range(0, steps + 1, 1500)]
    profiled = SimulationSpec(
        step_size=1.0,
        stop_time=float(steps),
        parameters={"Cell.SOC0": 0.5},
        profiles=(CustomProfile(Name="Cycler/current_setpoint", unit="A", values=points),),
        profile_interpolation="previous",
    )
    rates: dict[str, list[float]] = {"open_constant": [], "open_profile": [], "closed": []}
    with load_system(fmus, CONNECTIONS) as system:
        for _ in range(repeats):  # paired: the three cases back to back, in turn
            for name, spec in (("open_constant", constant), ("open_profile", profiled), ("closed", closed)):
                result = run(system, spec)
                if result.status != "completed":
                    raise RuntimeError(f"{name}: {result.status} {result.end_cause}: {result.reason}")
                rates[name].append(result.steps / (result.wall_time_s - result.setup_time_s))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "steps": steps,
        "repeats": repeats,
        "steps_per_s": {name: {"median": medians[name], "all": values} for name, values in rates.items()},
        "closed_over_open_constant": medians["closed"] / medians["open_constant"],
        "closed_over_open_profile": medians["closed"] / medians["open_profile"],
        "paired_ratios_constant": [c / o for c, o in zip(rates["closed"], rates["open_constant"], strict=True)],
    }


def master_in_subprocess(fmus: dict[str, Path], steps: int, repeats: int) -> dict[str, Any]:
    from fastlims.benches.cosim import SimulationSpec, run_in_subprocess
    from fastlims.benches.cosim.spec import ProcedureRun

    _, compiled = program(steps)
    spec = SimulationSpec(
        step_size=1.0,
        stop_time=float(steps + 10),
        parameters={"Cell.SOC0": 0.5},
        procedure=ProcedureRun(program=compiled, ports=PORTS, current_sign="discharge_positive"),
    )
    from fastlims.benches import sandboxing
    from fastlims.config import Settings

    # Sandboxed, as the worker runs it (probed once, before timing); a data folder outside the
    # repository, which is on the import path (the sandbox refuses to expose a data folder).
    sandbox = sandboxing.require(Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-data-"))))
    walls, loops = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run_in_subprocess(fmus, CONNECTIONS, spec, sandbox=sandbox)
        walls.append(time.perf_counter() - started)
        loops.append(result.steps / (result.wall_time_s - result.setup_time_s))
        if result.status != "completed":
            raise RuntimeError(f"master in a subprocess: {result.end_cause}: {result.reason}")
    steps_done = result.steps
    return {
        "steps": steps_done,
        "wall_s": {"median": statistics.median(walls), "all": walls},
        "steps_per_s_wall": steps_done / statistics.median(walls),
        "steps_per_s_loop": statistics.median(loops),
    }


def end_to_end(steps: int, repeats: int, work: Path) -> dict[str, Any]:
    """Real virtual runs through the worker (see the module doc)."""
    import queue
    import secrets

    from pydantic import SecretStr
    from sqlalchemy import select
    from tests.integration.benches.conftest import Bench
    from tests.integration.pipeline.conftest import start_pipeline, stop_pipeline
    from tests.mqtt_helpers import Peer, start_mosquitto

    from fastlims.benches.worker import PahoPublisher
    from fastlims.bootstrap import build
    from fastlims.config import Settings
    from fastlims.db import migrate
    from fastlims.messaging.models import MqttRole
    from fastlims.peers.fmus import build_fmu
    from fastlims.runs.lifecycle import RunState
    from fastlims.runs.models import ScheduledRun

    password = secrets.token_urlsafe(12)
    mosquitto = start_mosquitto({"lims": (password, MqttRole.lims), "watcher": (password, MqttRole.lims)}, "fastest/v1")
    database = work / "fastlims.db"
    migrate.upgrade(f"sqlite:///{database}")
    system = build(Settings(data_dir=work, database_url=f"sqlite:///{database}"))
    from fastlims.bootstrap import prepare_database

    prepare_database(system)
    folder = work / "fmus"
    fmu_files = {"cycler": build_fmu("cycler", "2.0", folder / "c", name="cycler").read_bytes()}
    fmu_files["battery_cell"] = build_fmu("battery_cell", "2.0", folder / "b", name="battery_cell").read_bytes()
    settings = {
        "mqtt_url": f"mqtt://127.0.0.1:{mosquitto.port}",
        "mqtt_username": "lims",
        "mqtt_password": SecretStr(password),
        "virtual_bench_step_s": 1.0,
        "virtual_bench_concurrency": 1,
        "virtual_bench_timeout_s": 3600.0,
    }
    pipeline = start_pipeline(system, doe_runs=None, **settings)
    watcher = Peer(mosquitto.port, "watcher", password)
    assert watcher.connect() == 0 and watcher.subscribe("fastest/v1/runs/+/metrics") == [1]
    publisher = PahoPublisher(pipeline.system.settings, f"bench-{secrets.token_hex(3)}")
    worker = pipeline.system.bench_worker
    assert worker is not None
    worker.attach(publisher, owned=publisher)
    # What BenchWorker.start does before the first run: find the sandbox (not part of a run's time).
    from fastlims.benches import sandboxing

    worker.context.sandbox = sandboxing.require(pipeline.system.settings)
    bench = Bench(pipeline, fmu_files, worker, watcher)
    runs = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            uuid, (run_id,) = bench.request(parameters={"SOC0": 0.5}, procedure=procedure_text(steps))
            while True:
                with pipeline.system.database.transaction() as session:
                    row = session.scalar(select(ScheduledRun).where(ScheduledRun.run_id == run_id))
                    state = row.state if row else None
                    simulated, wall = (row.simulated_seconds, row.wall_seconds) if row else (None, None)
                if state in (RunState.completed.value, RunState.failed.value):
                    break
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            received = 0
            deadline = time.monotonic() + 30
            summary_key = f"requests/{uuid}/simulation-results/{run_id}/summary.json"
            stored = json.loads(pipeline.storage.get(summary_key))
            expected = int(stored["samples"])
            while received < expected and time.monotonic() < deadline:
                try:
                    _, payload = watcher.received.get(timeout=1)
                except queue.Empty:
                    continue
                received += len(json.loads(payload)["timestamps"])
            runs.append(
                {
                    "state": state,
                    "steps": int(simulated or 0),
                    "elapsed_s": elapsed,
                    "stepping_loop_s": wall,
                    "samples_stored": expected,
                    "samples_received_live": received,
                    "outcomes": stored.get("outcomes"),
                }
            )
    finally:
        worker.detach()
        watcher.close()
        stop_pipeline(pipeline)
        mosquitto.stop()
    elapsed = statistics.median(r["elapsed_s"] for r in runs)
    steps_done = runs[0]["steps"]
    return {"runs": runs, "elapsed_s": elapsed, "steps": steps_done, "steps_per_s": steps_done / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=450_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.steps < 3000 or args.repeats < 1:
        parser.error("--steps must be at least 3000 (one cycle) and --repeats at least 1")
    from fastlims.peers.fmus import build_fmu

    with tempfile.TemporaryDirectory(prefix="fastlims-bench-procedures-") as scratch:
        work = Path(scratch)
        fmus = {
            "Cycler": build_fmu("cycler", "2.0", work / "fmus", name="Cycler"),
            "Cell": build_fmu("battery_cell", "2.0", work / "fmus", name="Cell"),
        }
        load_before = load_average()
        loops = loop_rates(fmus, args.steps, args.repeats)
        alone = master_in_subprocess(fmus, args.steps, max(1, args.repeats // 2))
        e2e = end_to_end(args.steps, max(1, args.repeats // 2), work / "e2e")
    report = {
        "benchmark": "procedures",
        "machine": machine_info("fmpy", "numpy"),
        "load_average": {"before": load_before, "after": load_average()},
        "system": "reference cycler + battery_cell, FMI 2.0, 1 s communication step",
        "procedure": procedure_text(args.steps),
        "closed_loop": loops,
        "master_alone_in_subprocess": alone,
        "end_to_end": e2e,
        "ratios": {
            "closed_over_open": loops["closed_over_open_constant"],
            "end_to_end_over_master_alone": e2e["steps_per_s"] / alone["steps_per_s_wall"],
        },
        "targets": {"closed_over_open": 0.7, "end_to_end_over_master_alone": 0.5},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios"], indent=2))


if __name__ == "__main__":
    main()
