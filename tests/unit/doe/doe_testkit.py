"""Shared builders and independent checkers for the DoE tests (imported as a module, not a conftest)."""

from __future__ import annotations

import itertools

import numpy as np

from fastlims.doe import Design, DoeSpec, Parameter, design, resolve_factors


def bounded(n: int, low: float = 0.0, high: float = 10.0) -> list[Parameter]:
    """``n`` tunable Real parameters p0, p1, … declared with min/max."""
    return [Parameter(name=f"p{i}", unit="V", min=low, max=high, start=low) for i in range(n)]


def coded(result: Design) -> np.ndarray:
    """The varied factors' values mapped back to coded units, by the test's own arithmetic."""
    varied = [f for f in result.factors if f.fixed is None]
    return np.array([[2 * (run.values[f.name] - f.low) / (f.high - f.low) - 1 for f in varied] for run in result.runs])


def build(method: str, n_factors: int, **options: object) -> Design:
    """A design of ``method`` over ``n_factors`` bounded parameters, nominal duration 1 h."""
    spec = DoeSpec.model_validate({"method": method, **options})
    return design(spec, resolve_factors(bounded(n_factors), spec), 3600.0)


def shortest_word(two_level: np.ndarray, max_order: int | None = None) -> int | None:
    """Brute force: the fewest columns whose product is constant (None if no product of up to
    ``max_order`` columns is)."""
    k = two_level.shape[1]
    for order in range(1, min(k, max_order or k) + 1):
        for combo in itertools.combinations(range(k), order):
            product = np.prod(two_level[:, list(combo)], axis=1)
            if np.all(product == product[0]):
                return order
    return None


def d_eff_linear(points: np.ndarray) -> float:
    """|X'X|^(1/p)/N of the main-effects model, straight from the definition."""
    x = np.column_stack([np.ones(len(points)), points])
    det = np.linalg.det(x.T @ x)
    return float(max(det, 0.0) ** (1 / x.shape[1]) / len(points))


def _term_column(x: np.ndarray, term: str, index: dict[str, int]) -> np.ndarray:
    sign = -1.0 if term.startswith("-") else 1.0
    letters = term.lstrip("-")
    names = letters.split("*") if "*" in letters else list(letters)
    return sign * np.prod(x[:, [index[n] for n in names]], axis=1)


def check_aliasing(x: np.ndarray, letters: dict[str, str], generators: list[str], aliases: list[str]) -> None:
    """Every reported generator and alias chain holds in ``x`` (a ±1 matrix), and every aliasing
    of a main effect or two-factor interaction with a term of order <= 3 is reported."""
    index = {letter: j for j, letter in enumerate(letters.values())}
    for chain in [*generators, *aliases]:
        terms = chain.split(" = ")
        first = _term_column(x, terms[0], index)
        for term in terms[1:]:
            np.testing.assert_array_equal(_term_column(x, term, index), first, err_msg=chain)
    reported = {frozenset(t.lstrip("-") for t in chain.split(" = ")) for chain in aliases}
    names = list(letters.values())
    k = len(names)
    terms = ["".join(names[j] for j in c) for r in (1, 2, 3) for c in itertools.combinations(range(k), r)]
    columns = np.column_stack([_term_column(x, t, index) for t in terms])
    effects = [i for i, t in enumerate(terms) if len(t) <= 2]
    complete = np.abs(columns[:, effects].T @ columns) == len(x)
    for row, i in enumerate(effects):
        aliased = {terms[j] for j in np.flatnonzero(complete[row]) if j != i}
        if aliased:
            assert frozenset({terms[i], *aliased}) in reported, (terms[i], aliased)
