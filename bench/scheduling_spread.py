"""How much one 30 s CP-SAT result varies with the solver's random seed.

``bench/scheduling.py`` runs each solver once (seed 0) and compares that one run with one
10-minute reference run. The neighbourhood search is randomised and two cores shared with the
operating system are noisy, so a single run can land anywhere in a spread of about half a
percent on 1,000 runs. This runs the default CP-SAT pipeline at the same time limit with seeds
1..N on the same instances and records every objective, the median and the range, and where
the reference of ``bench/results/scheduling.json`` exists, how far the median and the worst run
are above it.

    PYTHONPATH=src python bench/scheduling_spread.py [--limit 30] [--seeds 4]

Writes bench/results/scheduling_spread.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastlims.scheduling import solve
from fastlims.scheduling.checker import check
from fastlims.scheduling.synthetic import synthetic_problem

RESULTS = Path(__file__).resolve().parent / "results"
INSTANCES = [("200x10", 200, 10, 12), ("1000x20", 1000, 20, 13)]


def _reference(name: str) -> int | None:
    """The 10-minute objective the main benchmark measured for ``name``, if any."""
    path = RESULTS / "scheduling.json"
    if not path.exists():
        return None
    for entry in json.loads(path.read_text())["instances"]:
        if entry["name"] == name:
            ref = entry["results"].get("cpsat_reference", {})
            return ref.get("objective")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=30.0, help="time limit per run, seconds")
    parser.add_argument("--seeds", type=int, default=4, help="solver seeds 1..N per instance")
    args = parser.parse_args()
    if args.limit <= 0:
        parser.error(f"--limit must be a positive number of seconds, not {args.limit}")
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, not {args.seeds}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    doc: dict[str, Any] = {
        "benchmark": "scheduling_spread",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {"time_limit_s": args.limit, "workers": 2, "solver_seeds": list(range(1, args.seeds + 1))},
        "instances": [],
    }
    out_path = RESULTS / "scheduling_spread.json"
    for name, n_runs, n_benches, seed in INSTANCES:
        problem = synthetic_problem(n_runs, n_benches, seed=seed)
        objectives: list[int] = []
        for solver_seed in range(1, args.seeds + 1):
            print(f"== {name} seed {solver_seed} ({args.limit:.0f} s)", flush=True)
            schedule = solve(problem, "cpsat", time_limit_s=args.limit, seed=solver_seed)
            violations = check(problem, schedule)
            if violations:
                raise SystemExit(f"{name} seed {solver_seed}: the checker found {violations[:3]}")
            objectives.append(schedule.objective)
        median = statistics.median(objectives)
        entry: dict[str, Any] = {
            "name": name,
            "objectives": objectives,
            "median": median,
            "min": min(objectives),
            "max": max(objectives),
            "spread_pct": round(100 * (max(objectives) / min(objectives) - 1), 2),
        }
        reference = _reference(name)
        if reference:
            entry["reference_objective"] = reference
            entry["median_above_reference_pct"] = round(100 * (median / reference - 1), 2)
            entry["worst_above_reference_pct"] = round(100 * (max(objectives) / reference - 1), 2)
        doc["instances"].append(entry)
        doc["wall_time_s"] = round(time.monotonic() - started, 1)
        out_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out_path}", flush=True)


if __name__ == "__main__":
    main()
