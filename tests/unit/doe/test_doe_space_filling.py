"""Latin hypercube (maximin) and Sobol designs: stratification, spread, determinism."""

from __future__ import annotations

import numpy as np
import pydoe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist

from fastlims.doe import DoeError
from fastlims.doe.designs import lhs_iterations
from tests.unit.doe.doe_testkit import build, coded


def _strata(x: np.ndarray, n: int) -> np.ndarray:
    """Index of the equal-width stratum of [-1, 1] each coded value falls in."""
    return np.minimum(np.floor((x + 1.0) / 2.0 * n), n - 1).astype(int)


# --- Latin hypercube ----------------------------------------------------------------------


@given(k=st.integers(1, 6), n=st.integers(2, 30), seed=st.integers(0, 2**16))
@settings(max_examples=12, deadline=None)
def test_latin_hypercube_has_one_run_per_stratum_of_every_factor(k: int, n: int, seed: int) -> None:
    x = coded(build("latin_hypercube", k, run_budget=n, seed=seed))
    assert x.shape == (n, k)
    for j in range(k):
        assert sorted(_strata(x[:, j], n)) == list(range(n))


@pytest.mark.parametrize(("n", "k"), [(10, 2), (20, 3), (30, 5)])
def test_maximin_spreads_runs_further_than_a_plain_latin_hypercube(n: int, k: int) -> None:
    ours, plain_same_seed, plain_best = [], [], []
    for seed in range(5):
        ours.append(pdist(coded(build("latin_hypercube", k, run_budget=n, seed=seed))).min())
        # the same seed without the maximin search, and pyDOE's plain LHS given the same
        # number of random tries to pick its best
        plain_same_seed.append(pdist(2 * pydoe.maximin_design(n, k, iterations=0, seed=seed) - 1).min())
        plain = pydoe.lhs(k, samples=n, criterion="maximin", iterations=50, seed=seed)
        plain_best.append(pdist(2 * plain - 1).min())
        assert ours[-1] >= plain_same_seed[-1]
    assert np.mean(ours) > np.mean(plain_same_seed)
    assert np.mean(ours) > np.mean(plain_best)


def test_latin_hypercube_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    a = build("latin_hypercube", 3, run_budget=12, seed=4)
    b = build("latin_hypercube", 3, run_budget=12, seed=4)
    c = build("latin_hypercube", 3, run_budget=12, seed=5)
    assert a.runs == b.runs
    assert a.runs != c.runs


def test_latin_hypercube_without_budget_uses_ten_runs_per_factor_and_says_so() -> None:
    result = build("latin_hypercube", 3)
    assert len(result.runs) == 30
    assert any("no run_budget given, using 30 runs" in w for w in result.warnings)


def test_lhs_search_effort_is_bounded() -> None:
    assert lhs_iterations(2, 1) == 500
    assert lhs_iterations(100, 10) == 10_000
    for n, k in [(1000, 50), (2000, 5), (2000, 100)]:
        assert 1 <= lhs_iterations(n, k) * n * n * k / 2 <= 5e8 or lhs_iterations(n, k) == 1


def test_latin_hypercube_of_one_run_is_refused() -> None:
    with pytest.raises(DoeError, match=r"latin_hypercube needs a run_budget of at least 2"):
        build("latin_hypercube", 3, run_budget=1)


# --- Sobol --------------------------------------------------------------------------------


@given(k=st.integers(1, 8), m=st.integers(1, 7), seed=st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_sobol_with_power_of_two_runs_is_balanced(k: int, m: int, seed: int) -> None:
    n = 2**m
    x = coded(build("sobol", k, run_budget=n, seed=seed))
    assert x.shape == (n, k)
    for j in range(k):
        # one run in each of the n equal strata of every factor (a (0, m, 1)-net in 1-D)
        assert sorted(_strata(x[:, j], n)) == list(range(n))
    if k >= 2:
        # the first two Sobol dimensions form a (0, m, 2)-net: every 2^a × 2^(m-a) box holds one run
        for a in range(m + 1):
            cells = _strata(x[:, 0], 2**a) * 2 ** (m - a) + _strata(x[:, 1], 2 ** (m - a))
            assert sorted(cells) == list(range(n))


def test_sobol_budget_not_a_power_of_two_is_rounded_down_with_a_warning() -> None:
    result = build("sobol", 3, run_budget=100)
    assert len(result.runs) == 64
    assert any("largest power of 2 within run_budget 100" in w for w in result.warnings)


def test_sobol_default_size_is_a_power_of_two() -> None:
    assert len(build("sobol", 3).runs) == 32  # 10 per factor, rounded up to 2^5


def test_sobol_is_deterministic_for_a_seed() -> None:
    assert build("sobol", 4, run_budget=16, seed=3).runs == build("sobol", 4, run_budget=16, seed=3).runs


def test_sobol_of_one_run_is_refused() -> None:
    with pytest.raises(DoeError, match=r"sobol needs a run_budget of at least 2"):
        build("sobol", 2, run_budget=1)


def test_large_latin_hypercube_skips_the_maximin_search_but_stays_latin(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastlims.doe import designs

    monkeypatch.setattr(designs, "MAX_MAXIMIN_RUNS", 5)
    result = build("latin_hypercube", 3, run_budget=12, seed=1)
    x = coded(result)
    for j in range(3):
        assert sorted(_strata(x[:, j], 12)) == list(range(12))
    assert any("no maximin search above 5 runs" in w for w in result.warnings)
