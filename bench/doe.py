# ruff: noqa: E402 - the BLAS thread limits below must be set before numpy is imported
"""Benchmark of the DoE package: time and quality of every method for 3, 6 and 10 factors.

Run: ``PYTHONPATH=src python bench/doe.py`` (writes ``bench/results/doe.json``).

Besides each method's time (the whole ``design()`` call the pipeline pays: construction, scaling
and quality assessment) and D-efficiency, it compares in the same process:

* our D-optimal coordinate exchange with pyDOE's ``optimal_design`` (candidate-set exchange,
  only up to 6 factors: 3^k candidates), random designs of the same size, and pyoptex when it is
  importable (it is not a dependency; install it in a scratch environment to compare);
* the maximin Latin hypercube with a plain Latin hypercube of the same seed.

BLAS is held to one thread: the matrices are small, and on a shared 2-core machine a threaded
BLAS fighting other processes made single calls 10x slower and the timings meaningless. The
machine's load average is recorded before and after; read ``seconds_min`` when it was high.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pydoe
from scipy.spatial.distance import pdist

from fastlims.doe import METHODS, DoeSpec, Parameter, design, resolve_factors
from fastlims.doe.designs import lhs_iterations
from fastlims.doe.quality import d_efficiency

SIZES = (3, 6, 10)
REPEATS = 3
SEED = 0
NOMINAL_DURATION_S = 3600.0
PYDOE_MAX_FACTORS = 6  # its candidate set is 3^k points: 59,049 at 10 factors takes minutes
RANDOM_DESIGNS = 20
OUT = Path(__file__).resolve().parent / "results" / "doe.json"


def _terms(k: int, model: str) -> int:
    return {"linear": 1 + k, "interactions": 1 + k + k * (k - 1) // 2, "quadratic": (k + 1) * (k + 2) // 2}[model]


def _budget(method: str, k: int) -> int | None:
    if method == "d_optimal":
        return 2 * (k + 1)
    if method in ("latin_hypercube", "sobol"):
        return 10 * k if method == "latin_hypercube" else 1 << (10 * k - 1).bit_length()
    return None


def _timed(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[Any, list[float]]:
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def bench_methods() -> list[dict[str, Any]]:
    rows = []
    for k in SIZES:
        parameters = [Parameter(name=f"p{i}", min=0.0, max=1.0) for i in range(k)]
        for method in METHODS:
            spec = DoeSpec(method=method, run_budget=_budget(method, k), seed=SEED)
            factors = resolve_factors(parameters, spec)
            result, times = _timed(lambda spec=spec, factors=factors: design(spec, factors, NOMINAL_DURATION_S))
            q = result.quality
            rows.append(
                {
                    "method": method,
                    "factors": k,
                    "run_budget": spec.run_budget,
                    "runs": len(result.runs),
                    "seconds_median": statistics.median(times),
                    "seconds_min": min(times),
                    "d_efficiency_main_effects": q.d_efficiency,
                    "d_efficiency_by_model": q.model_d_efficiency,
                    "min_pairwise_distance_coded": q.min_pairwise_distance,
                    "max_abs_correlation": q.max_abs_correlation,
                    "resolution": q.resolution,
                }
            )
            print(
                f"{method:22s} k={k:2d} runs={len(result.runs):5d} {statistics.median(times) * 1e3:9.1f} ms  "
                f"D-eff={q.d_efficiency:.3f}"
            )
    return rows


def _pyoptex() -> Callable[[int, int, str], np.ndarray] | None:
    try:
        from pyoptex.doe.fixed_structure import (
            Factor,
            create_fixed_structure_design,
            create_parameters,
            default_fn,
        )
        from pyoptex.doe.fixed_structure.metric import Dopt
        from pyoptex.utils.model import model2Y2X, partial_rsm_names
    except ImportError:
        return None

    def run(k: int, n: int, model: str) -> np.ndarray:
        np.random.seed(SEED)  # pyoptex draws from numpy's global generator
        factors = [Factor(name=f"x{i}", type="continuous", min=-1, max=1) for i in range(k)]
        kind = {"linear": "lin", "interactions": "tfi", "quadratic": "quad"}[model]
        y2x = model2Y2X(partial_rsm_names({f"x{i}": kind for i in range(k)}), factors)
        params = create_parameters(factors, default_fn(factors, Dopt(), y2x), n)
        frame, _ = create_fixed_structure_design(params, n_tries=10)
        return np.asarray(frame.to_numpy(dtype=float))

    return run


def bench_d_optimal() -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    pyoptex = _pyoptex()
    if pyoptex is not None:
        pyoptex(3, 8, "linear")  # numba compiles on first use; time the warm calls
    rows = []
    for k in SIZES:
        parameters = [Parameter(name=f"p{i}", min=-1.0, max=1.0) for i in range(k)]
        for model in ("linear", "interactions", "quadratic"):
            p = _terms(k, model)
            for n in (p, int(1.5 * p) + 1):
                spec = DoeSpec(method="d_optimal", run_budget=n, model=model, seed=SEED)
                factors = resolve_factors(parameters, spec)
                ours, times = _timed(lambda spec=spec, factors=factors: design(spec, factors, 1.0), repeats=1)
                row: dict[str, Any] = {
                    "factors": k,
                    "model": model,
                    "terms": p,
                    "runs": n,
                    "ours_seconds": times[0],
                    "ours_d_efficiency": ours.quality.model_d_efficiency.get(model, 0.0),
                }
                random = [d_efficiency(rng.choice([-1.0, 0.0, 1.0], size=(n, k)), model) for _ in range(RANDOM_DESIGNS)]
                row["random_3_level_d_efficiency_mean"] = float(np.mean(random))
                row["random_3_level_d_efficiency_max"] = float(np.max(random))
                if k <= PYDOE_MAX_FACTORS and model != "interactions":
                    candidates = pydoe.generate_candidate_set(k, n_levels=3)
                    degree = 1 if model == "linear" else 2
                    (points, _), times = _timed(
                        lambda c=candidates, n=n, d=degree: pydoe.optimal_design(c, n, degree=d, method="detmax"),
                        repeats=1,
                    )
                    row["pydoe_detmax_seconds"] = times[0]
                    row["pydoe_detmax_d_efficiency"] = d_efficiency(np.asarray(points), model)
                if pyoptex is not None:
                    points, times = _timed(lambda k=k, n=n, model=model: pyoptex(k, n, model), repeats=1)
                    row["pyoptex_seconds"] = times[0]
                    row["pyoptex_d_efficiency"] = d_efficiency(points, model)
                rows.append(row)
                print("d_optimal", {key: round(v, 4) if isinstance(v, float) else v for key, v in row.items()})
    return rows


def bench_lhs() -> list[dict[str, Any]]:
    rows = []
    for k in SIZES:
        n = 10 * k
        maximin = [pdist(pydoe.maximin_design(n, k, iterations=lhs_iterations(n, k), seed=s)).min() for s in range(5)]
        plain = [pdist(pydoe.maximin_design(n, k, iterations=0, seed=s)).min() for s in range(5)]
        rows.append(
            {
                "factors": k,
                "runs": n,
                "seeds": 5,
                "swap_iterations": lhs_iterations(n, k),
                "maximin_min_distance_unit_cube_mean": float(np.mean(maximin)),
                "plain_lhs_min_distance_unit_cube_mean": float(np.mean(plain)),
                "ratio": float(np.mean(maximin) / np.mean(plain)),
            }
        )
    return rows


def main() -> None:
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_before = os.getloadavg()
    report: dict[str, Any] = {
        "benchmark": "doe",
        "started": started,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "load_average_1_5_15_min_before": load_before,
            "libraries": {name: _version(name) for name in ("numpy", "scipy", "pydoe", "pydantic", "pyoptex", "numba")},
        },
        "inputs": {
            "factor_counts": list(SIZES),
            "seed": SEED,
            "repeats_per_timing": REPEATS,
            "run_budgets": ("d_optimal 2(k+1); latin_hypercube 10k; sobol next power of 2 >= 10k; others by method"),
        },
        "units": {
            "seconds": "wall-clock seconds of one call (median of repeats where repeated)",
            "d_efficiency": "|X'X|^(1/p)/N in coded units [-1, 1]; 1.0 = orthogonal two-level design",
            "min_pairwise_distance_coded": "Euclidean, coded units, distinct runs only",
        },
        "methods": bench_methods(),
        "d_optimal_comparison": bench_d_optimal(),
        "latin_hypercube_maximin_vs_plain": bench_lhs(),
    }
    report["machine"]["load_average_1_5_15_min_after"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
