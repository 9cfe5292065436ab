"""D-optimal designs of a given size by coordinate exchange (Meyer & Nachtsheim, 1995).

Why our own: pyDOE's ``optimal_design`` exchanges rows of a 3^k candidate set and never leaves a
singular starting design: it returns D-efficiency 0 when runs equal model terms (FINDINGS.md)
and also well above it (6 factors, quadratic model, 42 runs for 28 terms: rank 14), and takes
minutes at 10 factors. pyoptex does coordinate exchange well, but installs ~0.9 GB (numba,
llvmlite, pandas, scikit-learn, statsmodels, plotly, kaleido) and was no more efficient and
3-25x slower on our benchmark (bench/results/doe.json). This is ~100 lines of numpy.

The algorithm: from a random nonsingular start, change one coordinate of one run at a time to
the grid level that most increases det(X'X) (Fedorov's update formula, so each trial costs
O(p^2)), until a full pass changes nothing; keep the best of several random starts. Starts are
drawn from ``numpy.random.default_rng(seed)``, so a seed gives the same design every time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from fastlims.doe.errors import DoeError
from fastlims.doe.models import Model
from fastlims.doe.quality import expand, model_exponents, term_columns

FloatMatrix = npt.NDArray[np.float64]
FloatVector = npt.NDArray[np.float64]

#: Random starts kept to the best: enough that small problems reach the known optimum (tests).
DEFAULT_STARTS = 10
#: Designs up to this many runs get all their starts.
_FULL_STARTS_UP_TO = 200
#: Passes over all coordinates per start; a pass without a change ends the start earlier.
MAX_PASSES = 30
#: Random draws tried to find a nonsingular starting design.
_START_ATTEMPTS = 200
#: An exchange must raise det(X'X) by more than this factor (avoids cycling on float noise).
_MIN_GAIN = 1e-9


def coordinate_exchange(
    grids: Sequence[FloatVector],
    n_runs: int,
    model: Model,
    seed: int,
    *,
    starts: int = DEFAULT_STARTS,
) -> FloatMatrix:
    """A D-optimal design (N × k, coded) with each factor's values taken from its grid.

    ``grids[j]`` lists the coded levels factor j may take (e.g. [-1, 0, 1]). Raises `DoeError`
    when ``n_runs`` is below the number of model terms, or when no nonsingular design exists on
    the grids. The returned design is always nonsingular for ``model``, including the saturated
    case n_runs == number of terms.
    """
    columns = term_columns(model_exponents(len(grids), model))
    p = len(columns[0])
    if n_runs < p:
        raise DoeError(
            [
                f"run_budget {n_runs} is too small for a D-optimal design of the {model} model in "
                f"{len(grids)} factors: it has {p} terms, so at least {p} runs are needed"
            ]
        )
    rng = np.random.default_rng(seed)
    # A start costs O(N) exchanges; large designs get fewer starts (their starts end at nearly
    # the same efficiency anyway), so a big budget cannot stall the pipeline.
    starts = max(1, min(starts, starts * _FULL_STARTS_UP_TO // n_runs))
    best: FloatMatrix | None = None
    best_logdet = -np.inf
    for _ in range(starts):
        start = _nonsingular_start(grids, n_runs, columns, rng)
        if start is None:
            continue
        design, logdet = _improve(start, grids, columns)
        if logdet > best_logdet + 1e-12:
            best, best_logdet = design, logdet
    if best is None:
        raise DoeError(
            [
                f"no nonsingular {n_runs}-run design of the {model} model exists on the factors' levels: "
                "give factors more levels (a quadratic model needs three per factor) or raise run_budget"
            ]
        )
    return best


Columns = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


def _nonsingular_start(
    grids: Sequence[FloatVector], n_runs: int, columns: Columns, rng: np.random.Generator
) -> FloatMatrix | None:
    p = len(columns[0])
    for _ in range(_START_ATTEMPTS):
        design = np.column_stack([rng.choice(grid, size=n_runs) for grid in grids]).astype(np.float64)
        if np.linalg.matrix_rank(expand(design, columns)) == p:
            return design
    return None


def _improve(design: FloatMatrix, grids: Sequence[FloatVector], columns: Columns) -> tuple[FloatMatrix, float]:
    design = design.copy()
    x = expand(design, columns)
    n, k = design.shape
    # Every single-coordinate change of a run, as (factor, grid level) pairs: a run's changes
    # are scored together in one vectorised step, the best one is made, and the run is
    # revisited until none helps. Same moves as coordinate-by-coordinate, ~k times fewer calls.
    factor_of = np.concatenate([np.full(len(grid), j) for j, grid in enumerate(grids)])
    level_of = np.concatenate(list(grids)).astype(np.float64)
    moves = np.arange(len(factor_of))
    for _ in range(MAX_PASSES):
        # Recomputed each pass so rounding from the rank-2 updates cannot accumulate.
        inverse = np.linalg.inv(x.T @ x)
        changed = False
        for i in range(n):
            for _ in range(k):
                candidates = np.repeat(design[i : i + 1], len(moves), axis=0)
                candidates[moves, factor_of] = level_of
                y = expand(candidates, columns)
                old = x[i]
                a_old = inverse @ old
                old_var = float(old @ a_old)
                new_var = np.einsum("ij,ij->i", y @ inverse, y)
                cross = y @ a_old
                # Fedorov: det(M - x x' + y y') / det(M) = (1 - x'Ax)(1 + y'Ay) + (x'Ay)^2
                gain = (1.0 - old_var) * (1.0 + new_var) + cross**2
                best = int(np.argmax(gain))
                if gain[best] <= 1.0 + _MIN_GAIN:
                    break
                new = y[best]
                # Woodbury update of the inverse for the rank-2 change +y y' - x x'.
                u = np.column_stack([new, old])
                a_u = inverse @ u
                small = np.array([[1.0 + new_var[best], cross[best]], [cross[best], old_var - 1.0]])
                inverse = inverse - a_u @ np.linalg.solve(small, a_u.T)
                x[i] = new
                design[i] = candidates[best]
                changed = True
        if not changed:
            break
    sign, logdet = np.linalg.slogdet(x.T @ x)
    return design, float(logdet) if sign > 0 else -np.inf
