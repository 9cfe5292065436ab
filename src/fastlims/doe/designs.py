"""Build a design: one pure function per method, in coded units, then scaled to the factors.

Every method function takes the spec and the *varied* factors and returns a `CodedDesign`: an
N × k matrix with every entry in [-1, 1] (low → -1, high → +1). `design` scales it, snaps
values to declared levels or integers, adds the fixed factors, and measures the result. Keeping
every design inside [-1, 1] is what keeps every run inside the parameters' declared bounds:
the central composite design is therefore *inscribed* (star points on the bounds).

pyDOE provides the factorial, Plackett–Burman, Box–Behnken, central composite and maximin
Latin hypercube designs; scipy.stats.qmc the Sobol points; `optimal` the D-optimal designs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pydoe
from scipy.stats import qmc

from fastlims.doe.errors import DoeError
from fastlims.doe.models import Design, DoeSpec, Factor, Method, Run
from fastlims.doe.optimal import coordinate_exchange
from fastlims.doe.quality import TwoLevelStructure, assess, parse_generators, two_level_structure

FloatMatrix = npt.NDArray[np.float64]

#: Default size of Latin hypercube and Sobol designs without a run budget: the "10 runs per
#: factor" rule for computer experiments (Loeppky, Sacks & Welch, 2009).
RUNS_PER_FACTOR = 10
#: Default resolution of a fractional factorial without budget or resolution: IV keeps main
#: effects clear of two-factor interactions, the usual aim of a screening design.
DEFAULT_RESOLUTION = 4
#: Default centre points of a central composite design (pyDOE's default for its first block).
DEFAULT_CCD_CENTER_POINTS = 4
#: The largest design built at all: every run is a test on a bench, so beyond this it is a typo
#: in a catalog entry, not a plan.
MAX_RUNS = 10_000
#: The largest Latin hypercube given pyDOE's maximin search (each swap costs O(N^2 k)).
MAX_MAXIMIN_RUNS = 2_000


@dataclass(frozen=True)
class CodedDesign:
    """A design in coded units, with what the method knows about it."""

    matrix: FloatMatrix
    warnings: tuple[str, ...] = ()
    two_level: bool = False
    structure: TwoLevelStructure | None = None


MethodFunction = Callable[[DoeSpec, Sequence[Factor]], CodedDesign]


def design(
    spec: DoeSpec,
    factors: Sequence[Factor],
    nominal_duration_s: float,
    *,
    duration_of: Callable[[Mapping[str, float]], float] | None = None,
) -> Design:
    """Build the design ``spec`` asks for over ``factors`` (from `resolve_factors`).

    Every run gets ``nominal_duration_s`` (the profile's length or the test's nominal
    duration) as its expected duration, or ``duration_of(run values)`` when given, for tests
    whose length depends on a factor. Raises `DoeError` when the design cannot be built within
    ``spec.run_budget`` or from these factors.
    """
    problems: list[str] = []
    if not math.isfinite(nominal_duration_s) or nominal_duration_s <= 0:
        problems.append(f"nominal_duration_s must be a positive number of seconds, got {nominal_duration_s}")
    names = [f.name for f in factors]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"factors given more than once: {', '.join(twice)}")
    varied = [f for f in factors if f.varies]
    if not varied:
        problems.append("nothing to vary: every factor is fixed")
    if problems:
        raise DoeError(problems)

    coded = METHODS[spec.method](spec, varied)
    matrix = np.asarray(coded.matrix, dtype=np.float64)
    if matrix.shape[0] > MAX_RUNS:
        raise DoeError([f"{spec.method}: {matrix.shape[0]} runs is more than the {MAX_RUNS} allowed"])
    warnings = list(coded.warnings)
    actual = np.empty_like(matrix)
    rows: list[dict[str, float]] = [{} for _ in range(matrix.shape[0])]
    for j, factor in enumerate(varied):
        column = _scale(factor, matrix[:, j])
        actual[:, j] = 2.0 * (column - factor.low) / (factor.high - factor.low) - 1.0
        if not np.allclose(actual[:, j], matrix[:, j], atol=1e-9):
            what = "its levels" if factor.levels is not None else "whole numbers"
            warnings.append(
                f"factor {factor.name!r}: design values were rounded to {what}; the design's "
                "properties hold only approximately (see quality)"
            )
        for row, value in zip(rows, column.tolist(), strict=True):
            row[factor.name] = value
    for factor in factors:
        if factor.fixed is not None:
            for row in rows:
                row[factor.name] = factor.fixed
        if factor.note:
            warnings.append(f"factor {factor.name!r}: {factor.note}")
    ordered = [f.name for f in factors]
    width = max(3, len(str(len(rows))))
    runs = []
    for number, row in enumerate(rows, start=1):
        values = {name: row[name] for name in ordered}
        duration = nominal_duration_s if duration_of is None else float(duration_of(values))
        runs.append(Run(run_id=f"run-{number:0{width}d}", values=values, expected_duration_s=duration))
    quality = assess(actual, [f.name for f in varied], two_level=coded.two_level, structure=coded.structure)
    return Design(
        method=spec.method,
        seed=spec.seed,
        factors=list(factors),
        runs=runs,
        quality=quality,
        warnings=warnings,
        spec=spec,
    )


# --- one function per method -------------------------------------------------------------


def full_factorial(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """Every combination of levels: a factor's declared levels, else ``spec.default_levels``
    equally spaced over its range."""
    level_sets = [_factor_levels(f, spec.default_levels) for f in factors]
    warnings = [
        f"factor {f.name!r}: only {len(levels)} distinct whole numbers in its range"
        for f, levels in zip(factors, level_sets, strict=True)
        if f.levels is None and len(levels) < spec.default_levels
    ]
    n_runs = math.prod(len(levels) for levels in level_sets)
    _check_budget(spec, n_runs, "a full factorial", "use fractional_factorial or d_optimal")
    index = np.asarray(pydoe.fullfact([len(levels) for levels in level_sets]), dtype=np.int64)
    matrix = np.column_stack([levels[index[:, j]] for j, levels in enumerate(level_sets)])
    two_level = all(len(levels) == 2 for levels in level_sets)
    if spec.center_points:
        if two_level:
            matrix = _with_centre_points(matrix, spec.center_points)
        else:
            warnings.append("center_points ignored: a multi-level full factorial already has its centre levels")
    return CodedDesign(matrix, tuple(warnings), two_level=two_level)


def fractional_factorial(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """A regular two-level fraction: from ``spec.generators``, else the smallest design of
    ``spec.resolution``, else the highest resolution ``spec.run_budget`` affords (in the fewest
    runs that reach it: the budget is a cap, not a target), else resolution IV."""
    k = len(factors)
    if k < 2:
        raise DoeError([f"fractional_factorial needs at least 2 varied factors, got {k}: use full_factorial"])
    warnings = _two_level_warnings(factors)
    structure: TwoLevelStructure | None
    if spec.generators:
        structure = parse_generators(spec.generators, k)
        resolution = structure.resolution()
        if spec.resolution is not None and resolution is not None and resolution < spec.resolution:
            raise DoeError(
                [f"generators give resolution {resolution}, below the requested resolution {spec.resolution}"]
            )
        _check_budget(spec, 1 << len(structure.base), "the fraction these generators define", "add generators")
        matrix = _from_generators(structure)
    elif spec.resolution is not None or spec.run_budget is None:
        target = spec.resolution or DEFAULT_RESOLUTION
        matrix = _best_at_same_size(k, _fracfact_by_res(k, target), target)
        _check_budget(spec, matrix.shape[0], f"a resolution {target} fraction of {k} factors", "lower the resolution")
        structure = two_level_structure(matrix)
    else:
        matrix = _highest_resolution_within(k, min(spec.run_budget, MAX_RUNS))
        structure = two_level_structure(matrix)
    if structure is not None and not structure.generators:
        warnings.append(f"fractional_factorial: this is the full 2^{k} factorial (no aliasing)")
    if spec.center_points:
        matrix = _with_centre_points(matrix, spec.center_points)
    return CodedDesign(matrix, tuple(warnings), two_level=True, structure=structure)


def plackett_burman(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """A two-level screening design in N runs, N the next multiple of 4 above the factor count
    (the next size pyDOE can build when it cannot build that one)."""
    k = len(factors)
    matrix: FloatMatrix | None = None
    for columns in range(k, k + 16):
        try:
            matrix = np.asarray(pydoe.pbdesign(columns), dtype=np.float64)[:, :k]
            break
        except ValueError:
            continue
    if matrix is None:  # pragma: no cover - pyDOE builds every size within 16 columns
        raise DoeError([f"plackett_burman: pyDOE cannot build a design for {k} factors"])
    warnings = _two_level_warnings(factors)
    if matrix.shape[0] > 4 * (k // 4 + 1):
        warnings.append(
            f"plackett_burman: {matrix.shape[0]} runs (no smaller Plackett–Burman design for {k} factors is available)"
        )
    _check_budget(spec, matrix.shape[0] + (spec.center_points or 0), "a Plackett–Burman design", "screen fewer factors")
    if spec.center_points:
        matrix = _with_centre_points(matrix, spec.center_points)
    return CodedDesign(matrix, tuple(warnings), two_level=True)


def box_behnken(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """Three levels, every pair of factors at its four (±1, ±1) edge midpoints with the others at
    their centre, plus centre points (``spec.center_points``, else pyDOE's default)."""
    k = len(factors)
    if k < 3:
        raise DoeError([f"box_behnken needs at least 3 varied factors, got {k}: use central_composite"])
    matrix = np.asarray(pydoe.bbdesign(k, center=spec.center_points), dtype=np.float64)
    _check_budget(spec, matrix.shape[0], "a Box–Behnken design", "lower center_points or use d_optimal")
    return CodedDesign(matrix, tuple(_level_warnings(factors, 3)))


def central_composite(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """Cube + star + centre points, scaled into [-1, 1].

    ``inscribed`` (default): rotatable, star points on the bounds at ±1 and cube points at
    ±1/alpha with alpha = (cube runs)^(1/4); ``faced``: alpha = 1, three levels. The cube is
    the full 2^k factorial up to 4 factors (pyDOE's ``ccdesign``) and a resolution V fraction
    from 5 factors on, which pyDOE's ``ccdesign`` lacks.
    """
    k = len(factors)
    if k < 2:
        raise DoeError([f"central_composite needs at least 2 varied factors, got {k}"])
    centres = DEFAULT_CCD_CENTER_POINTS if spec.center_points is None else spec.center_points
    if k <= 4:
        matrix = np.asarray(
            pydoe.ccdesign(k, center=(centres, 0), alpha="rotatable", face=spec.ccd_face), dtype=np.float64
        )
    else:
        cube = _fracfact_by_res(k, 5)
        alpha = 1.0 if spec.ccd_face == "faced" else float(cube.shape[0]) ** 0.25
        star = np.vstack([sign * np.eye(k) for sign in (-1.0, 1.0)])
        star = star.reshape(2, k, k).transpose(1, 0, 2).reshape(2 * k, k)
        matrix = np.vstack([cube / alpha, np.zeros((centres, k)), star])
    _check_budget(spec, matrix.shape[0], "a central composite design", "lower center_points or use d_optimal")
    levels = 3 if spec.ccd_face == "faced" else 5
    return CodedDesign(matrix, tuple(_level_warnings(factors, levels)))


def latin_hypercube(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """A maximin Latin hypercube (pyDOE ``maximin_design``): one run per stratum of every
    factor, points at stratum centres, swapped to push the closest pair apart."""
    k = len(factors)
    n, warnings = _space_filling_size(spec, k)
    if n < 2:
        raise DoeError(["latin_hypercube needs a run_budget of at least 2"])
    _check_budget(spec, n, "a Latin hypercube", "lower run_budget")
    if n <= MAX_MAXIMIN_RUNS:
        unit = np.asarray(pydoe.maximin_design(n, k, iterations=lhs_iterations(n, k), seed=spec.seed))
    else:
        # pyDOE's search recomputes all N^2/2 distances per swap: beyond this size a plain
        # cell-centred Latin hypercube (the same as its starting point) is all that is affordable.
        unit = np.asarray(qmc.LatinHypercube(d=k, scramble=False, seed=spec.seed).random(n))
        warnings.append(f"latin_hypercube: no maximin search above {MAX_MAXIMIN_RUNS} runs (a plain Latin hypercube)")
    warnings += _level_warnings(factors, n)
    return CodedDesign(2.0 * unit - 1.0, tuple(warnings))


def lhs_iterations(n_runs: int, n_factors: int) -> int:
    """Swap trials of the maximin search: grows with the design, capped to about a second
    (each trial recomputes N^2/2 distances in k dimensions)."""
    affordable = int(5e8 // max(1, n_runs * n_runs * n_factors // 2))
    return max(1, min(10_000, max(500, 20 * n_runs * n_factors), affordable))


def sobol(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """Scrambled Sobol points (scipy.stats.qmc), 2^m of them: only then is every one of the
    2^m equal strata of each factor hit exactly once (the net's balance property)."""
    k = len(factors)
    n, warnings = _space_filling_size(spec, k, power_of_two=True)
    _check_budget(spec, n, "a Sobol design", "lower run_budget")
    m = n.bit_length() - 1
    if 1 << m != n:
        warnings.append(
            f"sobol: {1 << m} runs, the largest power of 2 within run_budget {n} (other sizes lose Sobol's balance)"
        )
    if m < 1:
        raise DoeError(["sobol needs a run_budget of at least 2"])
    # ``seed=`` rather than the newer ``rng=``: it works on every scipy pyproject allows (>= 1.11).
    unit = qmc.Sobol(d=k, scramble=True, seed=spec.seed).random_base2(m)
    warnings += _level_warnings(factors, 1 << m)
    return CodedDesign(2.0 * np.asarray(unit, dtype=np.float64) - 1.0, tuple(warnings))


def d_optimal(spec: DoeSpec, factors: Sequence[Factor]) -> CodedDesign:
    """A D-optimal design of exactly ``spec.run_budget`` runs for ``spec.model`` (coordinate
    exchange over each factor's levels, or -1/0/+1 for continuous factors)."""
    if spec.run_budget is None:
        raise DoeError(["d_optimal needs a run_budget: the number of runs to choose"])
    _check_budget(spec, spec.run_budget, "a D-optimal design", "lower run_budget")
    grids = []
    for factor in factors:
        if factor.levels is not None:
            grid = np.array([factor.to_coded(level) for level in factor.levels])
        else:
            grid = np.unique([factor.to_coded(factor.from_coded(c)) for c in (-1.0, 0.0, 1.0)])
        grids.append(grid)
    if spec.model == "quadratic":
        short = [f.name for f, g in zip(factors, grids, strict=True) if len(g) < 3]
        if short:
            raise DoeError([f"factor {name!r} has only two levels: a quadratic model needs three" for name in short])
    matrix = coordinate_exchange(grids, spec.run_budget, spec.model, spec.seed)
    return CodedDesign(matrix)


METHODS: dict[Method, MethodFunction] = {
    "full_factorial": full_factorial,
    "fractional_factorial": fractional_factorial,
    "plackett_burman": plackett_burman,
    "box_behnken": box_behnken,
    "central_composite": central_composite,
    "latin_hypercube": latin_hypercube,
    "sobol": sobol,
    "d_optimal": d_optimal,
}


# --- helpers -------------------------------------------------------------------------------


def _scale(factor: Factor, coded: FloatMatrix) -> FloatMatrix:
    """`Factor.from_coded` over a whole column (the same rules, vectorised)."""
    values = np.clip(factor.low + (coded + 1.0) / 2.0 * (factor.high - factor.low), factor.low, factor.high)
    if factor.levels is not None:
        levels = np.asarray(factor.levels)
        # nearest level; on a tie the lower one, as argmin picks the first
        values = levels[np.argmin(np.abs(values[:, None] - levels[None, :]), axis=1)]
    elif factor.integer:
        values = np.clip(np.floor(values + 0.5), math.ceil(factor.low), math.floor(factor.high))
    return np.asarray(values, dtype=np.float64)


def _factor_levels(factor: Factor, default_levels: int) -> npt.NDArray[np.float64]:
    if factor.levels is not None:
        return np.array([factor.to_coded(level) for level in factor.levels])
    coded = np.linspace(-1.0, 1.0, default_levels)
    return np.unique([factor.to_coded(factor.from_coded(float(c))) for c in coded])


def _check_budget(spec: DoeSpec, n_runs: int, what: str, advice: str) -> None:
    if n_runs > MAX_RUNS:
        raise DoeError([f"{spec.method}: {what} needs {n_runs} runs, more than the {MAX_RUNS} allowed; {advice}"])
    if spec.run_budget is not None and n_runs > spec.run_budget:
        raise DoeError(
            [
                f"{spec.method}: {what} needs {n_runs} runs but run_budget is {spec.run_budget}; "
                f"raise run_budget or {advice}"
            ]
        )


def _with_centre_points(matrix: FloatMatrix, count: int) -> FloatMatrix:
    return np.vstack([matrix, np.zeros((count, matrix.shape[1]))])


def _two_level_warnings(factors: Sequence[Factor]) -> list[str]:
    return [
        f"factor {f.name!r}: a two-level design uses only its extreme levels {f.low:g} and {f.high:g}"
        for f in factors
        if f.levels is not None and len(f.levels) > 2
    ]


def _level_warnings(factors: Sequence[Factor], wanted: int) -> list[str]:
    return [
        f"factor {f.name!r} has {len(f.levels)} declared levels; the design's values are rounded to the nearest of them"
        for f in factors
        if f.levels is not None and len(f.levels) < wanted
    ]


def _space_filling_size(spec: DoeSpec, k: int, power_of_two: bool = False) -> tuple[int, list[str]]:
    if spec.run_budget is not None:
        return spec.run_budget, []
    n = RUNS_PER_FACTOR * k
    if power_of_two:
        n = 1 << (n - 1).bit_length()
    return n, [f"{spec.method}: no run_budget given, using {n} runs ({RUNS_PER_FACTOR} per factor)"]


def _fracfact_by_res(k: int, resolution: int) -> FloatMatrix:
    try:
        return np.asarray(pydoe.fracfact_by_res(k, resolution), dtype=np.float64)
    except ValueError as exc:
        raise DoeError([f"fractional_factorial: no resolution {resolution} design for {k} factors ({exc})"]) from exc


def _best_at_same_size(k: int, matrix: FloatMatrix, resolution: int) -> FloatMatrix:
    """Raise the resolution while the run count stays the same: pyDOE returns the smallest
    design *meeting* a resolution (5 factors at IV: E = ABC in 16 runs), but the same 16 runs
    reach V (E = ABCD), which is strictly better."""
    for higher in range(resolution + 1, k + 1):
        candidate = _fracfact_by_res(k, higher)
        if candidate.shape[0] != matrix.shape[0]:
            break
        matrix = candidate
    return matrix


def _highest_resolution_within(k: int, budget: int) -> FloatMatrix:
    """The two-level fraction of the highest resolution that fits ``budget`` runs."""
    if 1 << k <= budget:
        return np.asarray(pydoe.ff2n(k), dtype=np.float64)
    best: FloatMatrix | None = None
    for resolution in range(3, k + 1):
        candidate = _fracfact_by_res(k, resolution)
        if candidate.shape[0] > budget:
            break
        best = candidate
    if best is None:
        runs = _fracfact_by_res(k, 3).shape[0]
        raise DoeError(
            [
                f"fractional_factorial: even a resolution III fraction of {k} factors needs "
                f"{runs} runs but run_budget is {budget}; raise it or use plackett_burman"
            ]
        )
    return best


def _from_generators(structure: TwoLevelStructure) -> FloatMatrix:
    """Build the fraction with pyDOE's ``fracfact``: base factors become its letters a, b, …"""
    # Callers check the run count (2^base) first, which also keeps base factors within a..z.
    term = {factor: chr(ord("a") + i) for i, factor in enumerate(structure.base)}
    for g in structure.generators:
        word = "".join(term[j] for j in structure.base if g.word >> j & 1)
        term[g.factor] = ("-" if g.sign < 0 else "") + word
    gen = " ".join(term[j] for j in range(structure.n_factors))
    return np.asarray(pydoe.fracfact(gen), dtype=np.float64)
