"""What goes to doe-output/: runs within bounds for every method, JSON/CSV, durations, quality."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastlims.doe import (
    METHODS,
    DoeError,
    DoeSpec,
    FactorSpec,
    Parameter,
    design,
    design_from_json,
    design_to_csv,
    design_to_json,
    expected_duration_s,
    resolve_factors,
)
from fastlims.doe.quality import d_efficiency, factor_letters, min_pairwise_distance
from tests.unit.doe.doe_testkit import bounded, build, coded, d_eff_linear

MIN_FACTORS = {"box_behnken": 3, "central_composite": 2, "fractional_factorial": 2}


@given(
    method=st.sampled_from(METHODS),
    k=st.integers(1, 5),
    lows=st.lists(st.floats(-1e4, 1e4), min_size=5, max_size=5),
    widths=st.lists(st.floats(1e-3, 1e4), min_size=5, max_size=5),
    seed=st.integers(0, 1000),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_design_stays_within_the_bounds(
    method: str, k: int, lows: list[float], widths: list[float], seed: int
) -> None:
    k = max(k, MIN_FACTORS.get(method, 1))
    parameters = [Parameter(name=f"p{i}", min=lows[i], max=lows[i] + widths[i]) for i in range(k)]
    spec = DoeSpec.model_validate(
        {"method": method, "seed": seed, "run_budget": 2 * (k + 1) + 4 if method == "d_optimal" else None}
    )
    result = design(spec, resolve_factors(parameters, spec), 60.0)
    assert result.runs
    for run in result.runs:
        for p in parameters:
            assert p.min is not None and p.max is not None
            assert p.min <= run.values[p.name] <= p.max


def test_runs_carry_fixed_factors_ids_and_durations() -> None:
    parameters = [*bounded(3), Parameter(name="T", min=0, max=50)]
    spec = DoeSpec(method="full_factorial", factors=[FactorSpec(name="p0"), FactorSpec(name="p1")])
    result = design(spec, resolve_factors(parameters, spec, {"T": 25.0}), 5400.0)
    assert [r.run_id for r in result.runs] == ["run-001", "run-002", "run-003", "run-004"]
    assert all(r.values["T"] == 25.0 and r.expected_duration_s == 5400.0 for r in result.runs)
    assert list(result.runs[0].values) == ["p0", "p1", "T"]
    assert any("'T': fixed by the request" in w for w in result.warnings)


def test_run_ids_widen_past_999_runs() -> None:
    result = build("full_factorial", 10)
    assert result.runs[0].run_id == "run-0001" and result.runs[-1].run_id == "run-1024"


def test_duration_can_depend_on_the_run() -> None:
    spec = DoeSpec(method="full_factorial")
    result = design(spec, resolve_factors(bounded(1, 1, 2), spec), 3600.0, duration_of=lambda v: 3600.0 / v["p0"])
    assert [r.expected_duration_s for r in result.runs] == [3600.0, 1800.0]


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_duration_must_be_positive_and_finite(bad: float) -> None:
    spec = DoeSpec(method="sobol")
    with pytest.raises(DoeError, match=r"nominal_duration_s must be a positive number of seconds"):
        design(spec, resolve_factors(bounded(2), spec), bad)


def test_design_of_only_fixed_factors_is_refused() -> None:
    spec = DoeSpec(method="sobol", factors=[FactorSpec(name="p0", fixed=1.0)])
    factors = [f.model_copy(update={"fixed": 1.0}) for f in resolve_factors(bounded(1), DoeSpec(method="sobol"))]
    with pytest.raises(DoeError, match=r"nothing to vary"):
        design(spec, factors, 1.0)


def test_expected_duration_prefers_the_profile() -> None:
    assert expected_duration_s([0, 1, "2.5"], 3600.0) == 2.5
    assert expected_duration_s([5], 3600.0) == 3600.0
    assert expected_duration_s(None, 60) == 60.0
    with pytest.raises(DoeError, match=r"no run duration"):
        expected_duration_s([], None)
    with pytest.raises(DoeError, match=r"timestamps must not decrease"):
        expected_duration_s([0, 2, 1], 60.0)
    with pytest.raises(DoeError, match=r"timestamps must be numbers"):
        expected_duration_s([0, "noon"], 60.0)
    with pytest.raises(DoeError, match=r"nominal duration must be a positive"):
        expected_duration_s(None, -1.0)


# --- JSON and CSV -------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_json_round_trips_exactly(method: str) -> None:
    k = 3
    result = build(method, k, run_budget=12 if method in ("d_optimal", "latin_hypercube") else None)
    text = design_to_json(result)
    assert json.loads(text)["schema_version"] == "fastlims.doe/1"
    assert design_from_json(text) == result


def test_reading_bad_json_names_the_field() -> None:
    data = json.loads(design_to_json(build("full_factorial", 2)))
    data["runs"][1]["run_id"] = "first"
    del data["quality"]["d_efficiency"]
    with pytest.raises(DoeError) as caught:
        design_from_json(json.dumps(data))
    assert any(p.startswith("design.runs[1].run_id") for p in caught.value.problems)
    assert any(p.startswith("design.quality.d_efficiency") for p in caught.value.problems)


def test_csv_has_one_row_per_run_with_exact_values() -> None:
    result = build("latin_hypercube", 3, run_budget=7)
    rows = list(csv.reader(io.StringIO(design_to_csv(result))))
    assert rows[0] == ["run_id", "p0", "p1", "p2", "expected_duration_s"]
    assert len(rows) == 1 + 7
    for row, run in zip(rows[1:], result.runs, strict=True):
        assert row[0] == run.run_id
        assert [float(v) for v in row[1:4]] == [run.values[n] for n in ("p0", "p1", "p2")]
        assert float(row[4]) == 3600.0


# --- quality ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_reported_quality_matches_an_independent_computation(method: str) -> None:
    result = build(method, 4, run_budget=12 if method in ("d_optimal", "latin_hypercube", "sobol") else None)
    x = coded(result)
    assert result.quality.d_efficiency == pytest.approx(d_eff_linear(x), rel=1e-9, abs=1e-12)
    distinct = np.unique(np.round(x, 9), axis=0)
    gaps = [np.linalg.norm(a - b) for i, a in enumerate(distinct) for b in distinct[i + 1 :]]
    assert result.quality.min_pairwise_distance == pytest.approx(min(gaps))
    assert result.quality.replicated_runs == len(x) - len(distinct)


def test_d_efficiency_of_singular_or_tiny_designs_is_zero() -> None:
    assert d_efficiency(np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])) == 0.0
    assert d_efficiency(np.array([[1.0, 1.0]])) == 0.0
    assert min_pairwise_distance(np.zeros((3, 2))) == (0.0, 2)


def test_factor_letters_skip_i_and_continue_past_z() -> None:
    letters = factor_letters(27)
    assert letters[7:9] == ["H", "J"]
    assert "I" not in letters
    assert letters[24:] == ["Z", "F26", "F27"]


def test_snapping_to_declared_levels_is_warned() -> None:
    spec = DoeSpec(method="latin_hypercube", run_budget=8, factors=[FactorSpec(name="p0", levels=[0, 5, 10])])
    result = design(spec, resolve_factors(bounded(1), spec), 1.0)
    assert {r.values["p0"] for r in result.runs} <= {0.0, 5.0, 10.0}
    assert any("rounded to its levels" in w for w in result.warnings)
    assert any("has 3 declared levels" in w for w in result.warnings)


@given(
    low=st.floats(-1e3, 1e3),
    width=st.floats(0.5, 1e3),
    kind=st.sampled_from(["continuous", "levels", "integer"]),
    coded_values=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=20),
)
@settings(max_examples=50, deadline=None)
def test_vectorised_scaling_agrees_with_factor_from_coded(
    low: float, width: float, kind: str, coded_values: list[float]
) -> None:
    from fastlims.doe.designs import _scale
    from fastlims.doe.models import Factor

    high = low + width
    if kind == "integer":
        low = float(np.ceil(low))
        high = low + max(1.0, float(np.floor(width)))
    levels = sorted({low, low + width / 3, high}) if kind == "levels" else None
    factor = Factor(name="f", low=low, high=high, levels=levels, integer=kind == "integer")
    expected = [factor.from_coded(c) for c in coded_values]
    assert _scale(factor, np.array(coded_values)).tolist() == expected
