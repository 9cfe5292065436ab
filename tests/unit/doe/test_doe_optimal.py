"""D-optimal designs by coordinate exchange: nonsingular, deterministic, efficient, on budget."""

from __future__ import annotations

import numpy as np
import pydoe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlims.doe import DoeError, DoeSpec, FactorSpec, design, resolve_factors
from fastlims.doe.optimal import coordinate_exchange
from tests.unit.doe.doe_testkit import bounded, build, coded, d_eff_linear

TERMS = {
    "linear": lambda k: 1 + k,
    "interactions": lambda k: 1 + k + k * (k - 1) // 2,
    "quadratic": lambda k: (k + 1) * (k + 2) // 2,
}


def _model_matrix(x: np.ndarray, model: str) -> np.ndarray:
    """The tests' own model matrix (intercept, mains, interactions, squares)."""
    k = x.shape[1]
    columns = [np.ones(len(x)), *x.T]
    if model in ("interactions", "quadratic"):
        columns += [x[:, i] * x[:, j] for i in range(k) for j in range(i + 1, k)]
    if model == "quadratic":
        columns += [x[:, i] ** 2 for i in range(k)]
    return np.column_stack(columns)


@given(
    k=st.integers(2, 5),
    model=st.sampled_from(["linear", "interactions", "quadratic"]),
    extra=st.integers(0, 6),
    seed=st.integers(0, 1000),
)
@settings(max_examples=15, deadline=None)
def test_d_optimal_respects_the_budget_and_is_nonsingular(k: int, model: str, extra: int, seed: int) -> None:
    n = TERMS[model](k) + extra
    result = build("d_optimal", k, run_budget=n, model=model, seed=seed)
    x = coded(result)
    assert len(result.runs) == n
    assert np.all(np.abs(x) <= 1.0 + 1e-12)
    xm = _model_matrix(x, model)
    assert np.linalg.matrix_rank(xm) == xm.shape[1]
    assert result.quality.model_d_efficiency[model] > 0


@pytest.mark.parametrize(
    ("k", "model"),
    [
        (2, "linear"),
        (3, "linear"),
        (4, "linear"),
        (6, "linear"),
        (3, "interactions"),
        (2, "quadratic"),
        (3, "quadratic"),
    ],
)
def test_saturated_design_runs_equal_terms_is_nonsingular(k: int, model: str) -> None:
    """pyDOE's optimal_design returns a singular design here; ours must not."""
    n = TERMS[model](k)
    x = coded(build("d_optimal", k, run_budget=n, model=model))
    xm = _model_matrix(x, model)
    assert xm.shape == (n, n)
    assert abs(np.linalg.det(xm)) > 1e-6


def test_pydoe_optimal_design_is_singular_in_the_saturated_case_which_is_why_we_guard() -> None:
    candidates = pydoe.generate_candidate_set(3, n_levels=3)
    points, info = pydoe.optimal_design(candidates, 4, degree=1)
    x = _model_matrix(np.asarray(points), "linear")
    # Pins the upstream behaviour our guard exists for; if pyDOE fixes it, this fails and says so.
    assert np.linalg.matrix_rank(x) < 4, "pyDOE's optimal_design no longer returns a singular design"
    assert info["D_eff"] == 0.0


@pytest.mark.parametrize(("k", "n"), [(3, 8), (3, 4), (7, 8), (5, 12), (4, 16)])
def test_d_optimal_finds_an_orthogonal_design_when_one_exists(k: int, n: int) -> None:
    x = coded(build("d_optimal", k, run_budget=n))
    assert d_eff_linear(x) == pytest.approx(1.0)
    np.testing.assert_allclose(x.T @ x, n * np.eye(k), atol=1e-9)


@given(k=st.integers(2, 6), extra=st.integers(0, 8), seed=st.integers(0, 1000))
@settings(max_examples=12, deadline=None)
def test_d_optimal_beats_random_designs_of_the_same_size(k: int, extra: int, seed: int) -> None:
    n = k + 1 + extra
    ours = d_eff_linear(coded(build("d_optimal", k, run_budget=n, seed=seed)))
    rng = np.random.default_rng(seed)
    for _ in range(5):
        assert ours >= d_eff_linear(rng.uniform(-1, 1, size=(n, k))) - 1e-12
        assert ours >= d_eff_linear(rng.choice([-1.0, 0.0, 1.0], size=(n, k))) - 1e-12


def test_d_optimal_is_deterministic_for_a_seed() -> None:
    a = build("d_optimal", 4, run_budget=11, model="interactions", seed=9)
    b = build("d_optimal", 4, run_budget=11, model="interactions", seed=9)
    assert a.runs == b.runs


def test_d_optimal_uses_declared_levels_only() -> None:
    spec = DoeSpec(
        method="d_optimal",
        run_budget=9,
        model="quadratic",
        factors=[
            FactorSpec(name="p0", levels=[1.0, 2.0, 7.0, 9.0]),
            FactorSpec(name="p1", low=2.0, high=4.0),
        ],
    )
    result = design(spec, resolve_factors(bounded(2), spec), 10.0)
    assert {run.values["p0"] for run in result.runs} <= {1.0, 2.0, 7.0, 9.0}
    assert {run.values["p1"] for run in result.runs} <= {2.0, 3.0, 4.0}


def test_d_optimal_integer_parameter_takes_whole_numbers() -> None:
    from fastlims.doe import Parameter

    parameters = [Parameter(name="cells", type="Integer", min=1, max=6), *bounded(1)]
    spec = DoeSpec(method="d_optimal", run_budget=8, model="quadratic")
    result = design(spec, resolve_factors(parameters, spec), 10.0)
    assert all(float(run.values["cells"]).is_integer() for run in result.runs)
    assert {run.values["cells"] for run in result.runs} <= {1.0, 3.0, 4.0, 6.0}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, r"d_optimal needs a run_budget"),
        ({"run_budget": 3}, r"run_budget 3 is too small .* linear model in 3 factors: it has 4 terms"),
        ({"run_budget": 9, "model": "quadratic"}, r"it has 10 terms, so at least 10 runs"),
    ],
)
def test_d_optimal_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(DoeError, match=message):
        build("d_optimal", 3, **options)


def test_quadratic_model_needs_three_levels_per_factor() -> None:
    spec = DoeSpec(
        method="d_optimal",
        run_budget=10,
        model="quadratic",
        factors=[FactorSpec(name="p0", levels=[0.0, 1.0])],
    )
    with pytest.raises(DoeError, match=r"factor 'p0' has only two levels: a quadratic model needs three"):
        design(spec, resolve_factors(bounded(1), spec), 10.0)


def test_no_nonsingular_design_on_the_grid_is_an_error() -> None:
    grids = [np.array([-1.0, 1.0])] * 2
    with pytest.raises(DoeError, match=r"no nonsingular 6-run design of the quadratic model"):
        coordinate_exchange(grids, 6, "quadratic", seed=0, starts=2)
