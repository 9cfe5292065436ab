"""Full factorial, two-level fractional factorial and Plackett–Burman: their defining properties,
checked with the tests' own arithmetic (not the package's quality module)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlims.doe import DoeError, DoeSpec, FactorSpec, design, resolve_factors
from tests.unit.doe.doe_testkit import bounded, build, check_aliasing, coded, shortest_word

# --- full factorial -----------------------------------------------------------------------


def test_full_factorial_has_every_combination_once_and_is_balanced() -> None:
    spec = DoeSpec(
        method="full_factorial",
        factors=[
            FactorSpec(name="p0", levels=[1.0, 2.0, 5.0]),
            FactorSpec(name="p1", low=0.0, high=4.0),
            FactorSpec(name="p2", levels=[0.0, 10.0]),
        ],
        default_levels=4,
    )
    result = design(spec, resolve_factors(bounded(3), spec), 60.0)
    rows = [tuple(run.values[f"p{i}"] for i in range(3)) for run in result.runs]
    expected = set(itertools.product([1.0, 2.0, 5.0], np.linspace(0.0, 4.0, 4).tolist(), [0.0, 10.0]))
    assert len(rows) == 3 * 4 * 2
    assert set(rows) == expected  # all combinations, none twice (count matches)
    for i, n_levels in enumerate((3, 4, 2)):
        counts = Counter(row[i] for row in rows)
        assert len(counts) == n_levels
        assert set(counts.values()) == {len(rows) // n_levels}  # balance


@given(k=st.integers(1, 6))
@settings(max_examples=6, deadline=None)
def test_two_level_full_factorial_is_orthogonal_with_no_aliasing(k: int) -> None:
    result = build("full_factorial", k)
    x = coded(result)
    assert x.shape == (2**k, k)
    np.testing.assert_allclose(x.T @ x, 2**k * np.eye(k), atol=1e-9)
    assert result.quality.resolution is None
    assert result.quality.aliases == []
    assert result.quality.d_efficiency == pytest.approx(1.0)


def test_full_factorial_over_budget_is_an_error_naming_both_numbers() -> None:
    with pytest.raises(DoeError, match=r"needs 64 runs but run_budget is 20"):
        build("full_factorial", 6, run_budget=20)


def test_designs_beyond_the_run_cap_are_refused_before_they_are_built() -> None:
    with pytest.raises(DoeError, match=r"needs 16384 runs, more than the 10000 allowed; use fractional_factorial"):
        build("full_factorial", 14)


# --- two-level fractional factorial -------------------------------------------------------


def _check_fraction(result_x: np.ndarray) -> None:
    n, k = result_x.shape
    assert set(np.unique(result_x)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(result_x.sum(axis=0), np.zeros(k))  # balanced
    np.testing.assert_allclose(result_x.T @ result_x, n * np.eye(k), atol=1e-9)  # orthogonal
    assert n & (n - 1) == 0  # 2^(k-p) runs


@given(k=st.integers(3, 9), resolution=st.integers(3, 5))
@settings(max_examples=25, deadline=None)
def test_fraction_is_orthogonal_balanced_and_reports_its_true_resolution(k: int, resolution: int) -> None:
    result = build("fractional_factorial", k, resolution=resolution)
    x = coded(result)
    _check_fraction(x)
    true = shortest_word(x)
    assert result.quality.resolution == true
    if true is not None:
        assert true >= resolution
    q = result.quality
    check_aliasing(x, q.letters, q.generators, q.aliases)


def test_five_factors_at_resolution_iv_get_the_resolution_v_half_fraction_of_the_same_size() -> None:
    result = build("fractional_factorial", 5, resolution=4)
    assert len(result.runs) == 16
    assert result.quality.resolution == 5
    assert result.quality.generators == ["E = ABCD"]


def test_generators_from_the_catalog_are_honoured_and_aliasing_reported() -> None:
    result = build("fractional_factorial", 4, generators=["D = ABC"])
    x = coded(result)
    _check_fraction(x)
    np.testing.assert_array_equal(x[:, 3], x[:, 0] * x[:, 1] * x[:, 2])
    q = result.quality
    assert len(result.runs) == 8
    assert q.resolution == 4 == shortest_word(x)
    assert q.generators == ["D = ABC"]
    assert q.defining_relation == ["ABCD"]
    assert "D = ABC" in q.aliases
    assert "AB = CD" in q.aliases
    check_aliasing(x, q.letters, q.generators, q.aliases)
    assert q.letters == {"p0": "A", "p1": "B", "p2": "C", "p3": "D"}


def test_negative_generator_sign_is_applied_and_shown() -> None:
    result = build("fractional_factorial", 5, generators=["D = -AB", "E = AC"])
    x = coded(result)
    np.testing.assert_array_equal(x[:, 3], -x[:, 0] * x[:, 1])
    np.testing.assert_array_equal(x[:, 4], x[:, 0] * x[:, 2])
    assert result.quality.resolution == 3 == shortest_word(x)
    assert "-ABD" in result.quality.defining_relation
    assert "-BCDE" in result.quality.defining_relation  # (-ABD)(ACE) = -BCDE
    q = result.quality
    check_aliasing(x, q.letters, q.generators, q.aliases)


def test_budget_picks_the_highest_resolution_that_fits_in_the_fewest_runs() -> None:
    result = build("fractional_factorial", 7, run_budget=40)  # V needs 64 runs; IV fits in 16
    assert len(result.runs) == 16
    assert result.quality.resolution == shortest_word(coded(result)) == 4
    result = build("fractional_factorial", 7, run_budget=64)
    assert len(result.runs) == 64
    assert result.quality.resolution == 7


def test_budget_for_the_full_factorial_says_so() -> None:
    result = build("fractional_factorial", 3, run_budget=8)
    assert len(result.runs) == 8
    assert result.quality.resolution is None
    assert any("full 2^3 factorial (no aliasing)" in w for w in result.warnings)


def test_center_points_are_added_and_left_out_of_the_aliasing() -> None:
    result = build("fractional_factorial", 4, generators=["D = ABC"], center_points=3)
    x = coded(result)
    assert len(result.runs) == 11
    np.testing.assert_array_equal(x[8:], np.zeros((3, 4)))
    assert result.quality.resolution == 4
    assert result.quality.replicated_runs == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"generators": ["D = ABC"], "resolution": 5}, r"resolution 4, below the requested resolution 5"),
        ({"generators": ["D = AB", "D = AC"]}, r"factor D is generated more than once"),
        ({"generators": ["D = ABX"]}, r"uses X"),
        ({"generators": ["D == ABC"]}, r"not of the form"),
        ({"generators": ["D = A"]}, r"two or more different factors"),
        ({"generators": ["C = AB", "D = AC"]}, r"uses generated factor\(s\) C"),
        ({"resolution": 5, "run_budget": 8}, r"needs 16 runs but run_budget is 8"),
    ],
)
def test_fractional_factorial_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(DoeError, match=message):
        build("fractional_factorial", 4, **options)


def test_generators_leaving_too_many_base_factors_are_refused_before_building() -> None:
    with pytest.raises(DoeError, match=r"needs 524288 runs, more than the 10000 allowed; add generators"):
        build("fractional_factorial", 20, generators=["U = AB"])


def test_aliased_main_effects_are_refused() -> None:
    with pytest.raises(DoeError, match=r"main effects are aliased"):
        build("fractional_factorial", 5, generators=["D = AB", "E = AB"])


def test_fraction_of_one_factor_is_refused() -> None:
    with pytest.raises(DoeError, match=r"at least 2 varied factors"):
        build("fractional_factorial", 1)


def test_budget_below_any_fraction_is_refused_with_the_alternative() -> None:
    with pytest.raises(DoeError, match=r"plackett_burman"):
        build("fractional_factorial", 8, run_budget=8)


# --- Plackett–Burman ----------------------------------------------------------------------


@given(k=st.integers(1, 23))
@settings(max_examples=23, deadline=None)
def test_plackett_burman_is_orthogonal_in_a_multiple_of_four_runs(k: int) -> None:
    result = build("plackett_burman", k)
    x = coded(result)
    n = len(result.runs)
    assert n % 4 == 0
    assert n > k
    assert n == 4 * (k // 4 + 1)
    assert set(np.unique(x)) <= {-1.0, 1.0}
    np.testing.assert_array_equal(x.sum(axis=0), np.zeros(k))
    np.testing.assert_allclose(x.T @ x, n * np.eye(k), atol=1e-9)
    q = result.quality
    if n & (n - 1) == 0:  # a regular fraction: generators, exact resolution and alias chains
        assert q.resolution == shortest_word(x)
        check_aliasing(x, q.letters, q.generators, q.aliases)
    else:  # 12, 20 runs: non-regular, main effects partially aliased with two-factor interactions
        assert q.resolution == 3
        assert any("partial aliasing" in note for note in q.notes)
        check_aliasing(x, q.letters, q.generators, q.aliases)


def test_plackett_burman_of_twelve_runs_reports_partial_aliasing() -> None:
    result = build("plackett_burman", 11)
    assert len(result.runs) == 12
    assert result.quality.resolution == 3
    assert result.quality.generators == []
    assert result.quality.aliases == []  # no complete aliasing among effects up to order 3
    assert shortest_word(coded(result), max_order=3) is None
    [note] = result.quality.notes
    assert "partial aliasing" in note and "0.333" in note


def test_plackett_burman_of_24_runs_lists_its_complete_aliases() -> None:
    result = build("plackett_burman", 20)  # pyDOE doubles the 12-run design: some aliasing is complete
    x = coded(result)
    q = result.quality
    assert len(result.runs) == 24
    assert q.aliases and any("partial aliasing" in note for note in q.notes)
    check_aliasing(x, q.letters, q.generators, q.aliases)


def test_plackett_burman_where_pydoe_lacks_the_size_uses_the_next_one() -> None:
    result = build("plackett_burman", 25)  # 28 runs: pyDOE builds only 2^a, 12·2^a, 20·2^a
    x = coded(result)
    assert len(result.runs) == 32
    np.testing.assert_allclose(x.T @ x, 32 * np.eye(25), atol=1e-9)
    assert any("no smaller Plackett" in w for w in result.warnings)


def test_plackett_burman_over_budget_is_refused() -> None:
    with pytest.raises(DoeError, match=r"needs 12 runs but run_budget is 10"):
        build("plackett_burman", 9, run_budget=10)
