"""Scheduling benchmark: every solver on synthetic labs of 50 x 4, 200 x 10 and 1,000 x 20
(runs x benches, half physical with calendars) plus the largest n x 4 instance that Gurobi's
size-limited pip licence accepts, all from fixed seeds.

For each instance and solver it records the objective, the proven lower bound, the gap, time
to first feasible and time used at a fixed time limit, the ratios to the two baselines (the
plain earliest-finish-time list scheduler ``eft``, runs in release order, and the ``greedy``
portfolio of priority rules that is the solvers' fallback and start), and the independent
checker's verdict. A long reference run of the same CP-SAT pipeline (default
10 minutes) gives "the best the same model finds" to compare the limited run with.

    PYTHONPATH=src python bench/scheduling.py [--limit 30] [--reference 600] [--quick]

Writes bench/results/scheduling.json (rewritten after every measurement, so a partial run
still leaves its numbers) and Gantt charts bench/results/scheduling_gantt_*.svg/.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastlims.scheduling import InfeasibleError, Schedule, SolverUnavailableError, solve
from fastlims.scheduling.checker import check
from fastlims.scheduling.export import gantt_png, gantt_svg
from fastlims.scheduling.gurobi import model_size
from fastlims.scheduling.prepare import prepare
from fastlims.scheduling.solver import LNS_ABOVE_RUNS
from fastlims.scheduling.synthetic import synthetic_problem

RESULTS = Path(__file__).resolve().parent / "results"
INSTANCES = [("50x4", 50, 4, 11), ("200x10", 200, 10, 12), ("1000x20", 1000, 20, 13)]
GUROBI_FREE_LIMIT = (2000, 2000)  # variables, constraints of the size-limited pip licence


def _versions() -> dict[str, Any]:
    import numpy
    import ortools

    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ortools": ortools.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import gurobipy

        info["gurobipy"] = ".".join(str(x) for x in gurobipy.gurobi.version())
        info["gurobi_licence"] = "pip size-limited (non-production, 2,000 variables and 2,000 constraints)"
    except ImportError:
        info["gurobipy"] = None
    return info


def _row(schedule: Schedule, greedy_objective: int | None, violations: list[str]) -> dict[str, Any]:
    stats = dict(schedule.stats)
    return {
        "objective": schedule.objective,
        "best_bound": schedule.best_bound,
        "gap": round(schedule.gap, 5),
        "status": schedule.status,
        "makespan_min": schedule.makespan,
        "weighted_lateness": schedule.weighted_lateness,
        "time_to_first_feasible_s": round(schedule.time_to_first_feasible_s, 3),
        "solver_first_solution_s": round(stats["cp_first_solution_s"], 3) if "cp_first_solution_s" in stats else None,
        "time_used_s": round(schedule.time_used_s, 2),
        "time_limit_s": schedule.time_limit_s,
        "ratio_to_greedy": round(schedule.objective / greedy_objective, 4) if greedy_objective else None,
        "checker_violations": len(violations),
        "stats": {k: round(v, 4) for k, v in stats.items()},
    }


def _gurobi_fits(problem: Any) -> tuple[bool, tuple[int, int]]:
    prep = prepare(problem)
    greedy = solve(problem, "greedy")
    w_m = prep.makespan_weight
    horizon = min(prep.horizon, (greedy.objective - int(greedy.stats["lb_weighted_lateness"])) // max(1, w_m))
    size = model_size(prep, horizon)
    return size[0] <= GUROBI_FREE_LIMIT[0] and size[1] <= GUROBI_FREE_LIMIT[1], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=float, default=30.0, help="time limit per solver run, seconds")
    parser.add_argument("--reference", type=float, default=600.0, help="reference run length, seconds")
    parser.add_argument(
        "--reference-small",
        type=float,
        default=600.0,
        help="reference length for the instances of 50 runs or fewer, seconds",
    )
    parser.add_argument("--quick", action="store_true", help="tiny limits, to check the script itself")
    args = parser.parse_args()
    if args.quick:
        args.limit, args.reference, args.reference_small = 2.0, 4.0, 3.0
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / ("scheduling_quick.json" if args.quick else "scheduling.json")
    started = time.monotonic()
    doc: dict[str, Any] = {
        "benchmark": "scheduling",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _versions(),
        "settings": {
            "time_limit_s": args.limit,
            "reference_time_limit_s": args.reference,
            "reference_time_limit_small_s": args.reference_small,
            "workers": 2,
            "objective": "number_of_runs * makespan_min + sum(priority * (start - preferred_start)) [minutes]",
            "cpsat_strategy": f"up to {LNS_ABOVE_RUNS} open runs: whole model for half the time, then "
            "neighbourhood search; above: neighbourhood search (cpsat_whole_model: whole model only)",
            "generator": "fastlims.scheduling.synthetic.synthetic_problem(n_runs, n_benches, seed)",
        },
        "instances": [],
    }

    def save() -> None:
        doc["wall_time_s"] = round(time.monotonic() - started, 1)
        out_path.write_text(json.dumps(doc, indent=2) + "\n")

    # the largest n x 4 instance the size-limited Gurobi licence takes, same generator
    gurobi_instance = None
    for n in range(50, 9, -2):
        fits, size = _gurobi_fits(synthetic_problem(n, 4, seed=11))
        if fits:
            gurobi_instance = (f"{n}x4-gurobi-max", n, 4, 11)
            doc["settings"]["gurobi_max_instance_model_size"] = {"variables": size[0], "constraints": size[1]}
            break
    instances = list(INSTANCES) + ([gurobi_instance] if gurobi_instance else [])

    for name, n_runs, n_benches, seed in instances:
        problem = synthetic_problem(n_runs, n_benches, seed=seed)
        entry: dict[str, Any] = {
            "name": name,
            "runs": len(problem.runs),
            "benches": len(problem.benches),
            "physical_runs": sum(1 for r in problem.runs if r.bench_kind == "physical"),
            "pausable_runs": sum(1 for r in problem.runs if r.may_pause),
            "runs_with_deadline": sum(1 for r in problem.runs if r.deadline is not None),
            "frozen_runs": len(problem.frozen),
            "seed": seed,
            "results": {},
        }
        doc["instances"].append(entry)
        print(f"== {name}", flush=True)
        greedy = solve(problem, "greedy")
        entry["results"]["greedy"] = _row(greedy, greedy.objective, check(problem, greedy))
        eft = solve(problem, "eft")
        entry["results"]["eft"] = _row(eft, greedy.objective, check(problem, eft))
        entry["lower_bound"] = {
            "objective": greedy.best_bound,
            "makespan_min": int(greedy.stats["lb_makespan"]),
            "weighted_lateness": int(greedy.stats["lb_weighted_lateness"]),
            "trivial_weighted_lateness": int(greedy.stats["lb_trivial_weighted_lateness"]),
        }
        save()
        runs: list[tuple[str, str, dict[str, Any], float]] = [("cpsat", "cpsat", {}, args.limit)]
        runs.append(("cpsat_whole_model", "cpsat", {"strategy": "full"}, args.limit))
        fits, size = _gurobi_fits(problem)
        entry["gurobi_model_size"] = {"variables": size[0], "constraints": size[1], "fits_free_licence": fits}
        if fits or n_runs <= 50:
            runs.append(("gurobi", "gurobi", {}, args.limit))  # at 50 runs: shows the licence refusing
        else:
            entry["results"]["gurobi"] = {
                "error": f"not run: the big-M model has {size[0]} variables and {size[1]} constraints, beyond "
                "the size-limited pip licence (2,000 each)"
            }
        ref = args.reference_small if n_runs <= 50 else args.reference
        if not name.endswith("gurobi-max"):
            runs.append(("cpsat_reference", "cpsat", {}, ref))
        for label, solver, kwargs, limit in runs:
            print(f"   {label} ({limit:.0f} s)", flush=True)
            try:
                schedule = solve(problem, solver, time_limit_s=limit, **kwargs)  # type: ignore[arg-type]
            except (SolverUnavailableError, InfeasibleError) as exc:
                entry["results"][label] = {"error": str(exc)}
                save()
                continue
            violations = check(problem, schedule)
            entry["results"][label] = _row(schedule, greedy.objective, violations)
            if violations:
                entry["results"][label]["first_violations"] = violations[:5]
            if label == "cpsat" and name in ("50x4", "200x10"):
                (RESULTS / f"scheduling_gantt_{name}.svg").write_text(gantt_svg(problem, schedule))
                (RESULTS / f"scheduling_gantt_{name}.png").write_bytes(gantt_png(problem, schedule))
            save()
        res = entry["results"]
        best = min(v["objective"] for v in res.values() if "objective" in v)
        summary: dict[str, Any] = {"best_objective_found": best}
        if "cpsat" in res and "objective" in res["cpsat"]:
            summary["cpsat_better_than_greedy_pct"] = round(100 * (1 - res["cpsat"]["ratio_to_greedy"]), 2)
            summary["cpsat_better_than_eft_pct"] = round(
                100 * (1 - res["cpsat"]["objective"] / res["eft"]["objective"]), 2
            )
            summary["greedy_better_than_eft_pct"] = round(
                100 * (1 - res["greedy"]["objective"] / res["eft"]["objective"]), 2
            )
            if "cpsat_reference" in res and "objective" in res["cpsat_reference"]:
                summary["cpsat_above_reference_pct"] = round(
                    100 * (res["cpsat"]["objective"] / res["cpsat_reference"]["objective"] - 1), 2
                )
            if "gurobi" in res and "objective" in res["gurobi"]:
                summary["cpsat_vs_gurobi_pct"] = round(
                    100 * (res["cpsat"]["objective"] / res["gurobi"]["objective"] - 1), 2
                )
        entry["summary"] = summary
        save()
    print(f"wrote {out_path}", flush=True)


if __name__ == "__main__":
    main()
