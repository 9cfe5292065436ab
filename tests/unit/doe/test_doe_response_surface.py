"""Box–Behnken and central composite designs: levels, corners, star and centre points,
rotatability."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlims.doe import DoeError
from tests.unit.doe.doe_testkit import build, coded

# --- Box–Behnken --------------------------------------------------------------------------


@given(k=st.integers(3, 8), centres=st.integers(0, 4))
@settings(max_examples=15, deadline=None)
def test_box_behnken_has_three_levels_no_corners_and_its_centre_points(k: int, centres: int) -> None:
    x = coded(build("box_behnken", k, center_points=centres))
    np.testing.assert_allclose(np.unique(np.round(x, 12)), [-1.0, 0.0, 1.0])
    assert not np.any(np.all(np.abs(x) == 1.0, axis=1))  # no corner of the cube
    non_centre = x[np.any(x != 0, axis=1)]
    assert len(x) - len(non_centre) == centres
    # every run off the centre sits at the middle of an edge: two factors at ±1, the rest at 0
    assert set(np.count_nonzero(non_centre, axis=1)) == {2}
    pairs = {tuple(np.flatnonzero(row)) for row in non_centre}
    assert pairs == set(itertools.combinations(range(k), 2))
    assert len(non_centre) == 4 * len(pairs)
    np.testing.assert_allclose(x.sum(axis=0), 0.0, atol=1e-12)  # symmetric


def test_box_behnken_default_centre_points_are_pydoes() -> None:
    assert coded(build("box_behnken", 3)).shape == (15, 3)  # 12 edge runs + 3 centre points


def test_box_behnken_needs_three_factors() -> None:
    with pytest.raises(DoeError, match=r"box_behnken needs at least 3 varied factors, got 2"):
        build("box_behnken", 2)


# --- central composite --------------------------------------------------------------------


def _parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nonzero = np.count_nonzero(np.round(x, 12), axis=1)
    k = x.shape[1]
    return x[nonzero == k], x[nonzero == 1], x[nonzero == 0]


@given(k=st.integers(2, 7), centres=st.integers(0, 5))
@settings(max_examples=18, deadline=None)
def test_inscribed_ccd_is_rotatable_with_star_points_on_the_bounds(k: int, centres: int) -> None:
    x = coded(build("central_composite", k, center_points=centres))
    cube, star, centre = _parts(x)
    assert len(centre) == centres
    assert len(star) == 2 * k
    # star points: one factor at ±1 (the bound), the others at the centre; both signs of each
    assert {(int(np.flatnonzero(r)[0]), float(r[np.flatnonzero(r)[0]])) for r in star} == {
        (j, s) for j in range(k) for s in (-1.0, 1.0)
    }
    # cube points at ±1/alpha with alpha = (number of cube runs)^(1/4): rotatability
    alpha = len(cube) ** 0.25
    np.testing.assert_allclose(np.abs(cube), 1.0 / alpha)
    # and the moment condition of rotatability: [iiii] = 3 [iijj], odd moments zero
    four = np.sum(x**4, axis=0)
    for i, j in itertools.combinations(range(k), 2):
        assert four[i] == pytest.approx(3 * np.sum(x[:, i] ** 2 * x[:, j] ** 2))
        assert np.sum(x[:, i] * x[:, j]) == pytest.approx(0.0, abs=1e-12)
        assert np.sum(x[:, i] ** 2 * x[:, j]) == pytest.approx(0.0, abs=1e-12)
    assert np.max(np.abs(x)) == pytest.approx(1.0)


@pytest.mark.parametrize("k", [2, 4, 5, 6])
def test_faced_ccd_has_three_levels_and_star_points_on_the_faces(k: int) -> None:
    x = coded(build("central_composite", k, ccd_face="faced", center_points=1))
    np.testing.assert_allclose(np.unique(np.round(x, 12)), [-1.0, 0.0, 1.0])
    cube, star, centre = _parts(x)
    assert len(star) == 2 * k and len(centre) == 1
    np.testing.assert_array_equal(np.abs(cube), 1.0)


def test_ccd_cube_is_a_resolution_v_fraction_from_five_factors() -> None:
    x = coded(build("central_composite", 5, center_points=0))
    cube, _, _ = _parts(x)
    assert len(cube) == 16  # 2^(5-1), not 2^5
    signs = np.sign(cube)
    np.testing.assert_allclose(signs.T @ signs, 16 * np.eye(5))
    # resolution V: every product of two factors is orthogonal to every main effect and to other products
    columns = [signs[:, i] * signs[:, j] for i, j in itertools.combinations(range(5), 2)]
    model = np.column_stack([signs, *columns])
    np.testing.assert_allclose(model.T @ model, 16 * np.eye(model.shape[1]))


def test_ccd_needs_two_factors() -> None:
    with pytest.raises(DoeError, match=r"central_composite needs at least 2 varied factors, got 1"):
        build("central_composite", 1)


def test_ccd_over_budget_is_refused() -> None:
    with pytest.raises(DoeError, match=r"needs 18 runs but run_budget is 15"):
        build("central_composite", 3, run_budget=15)
