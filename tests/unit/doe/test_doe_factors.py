"""From FMU parameters + DoE spec + request overrides to factors; every refusal names its parameter."""

from __future__ import annotations

import pytest

from fastlims.doe import DoeError, DoeSpec, FactorSpec, Parameter, resolve_factors

PARAMETERS = [
    Parameter(name="T_amb", unit="degC", min=-20, max=60, start=25),
    Parameter(name="soc0", unit="1", min=0, max=1, start=0.5),
    Parameter(name="R0", unit="Ohm", start=0.01),  # no declared bounds
    Parameter(name="n_cells", type="Integer", min=1, max=12, start=4),
    Parameter(name="C_nom", unit="Ah", min=2, max=2, start=2),  # a single declared value
    Parameter(name="I_load", causality="input", variability="continuous", min=-10, max=10),
    Parameter(name="k_const", variability="constant", min=0, max=1),
    Parameter(name="model_name", type="String"),
]


def _spec(*factors: FactorSpec, method: str = "latin_hypercube") -> DoeSpec:
    return DoeSpec.model_validate({"method": method, "factors": [f.model_dump() for f in factors]})


def test_spec_narrows_levels_and_fixes_within_the_declared_bounds() -> None:
    factors = resolve_factors(
        PARAMETERS,
        _spec(
            FactorSpec(name="T_amb", low=10, high=40),
            FactorSpec(name="soc0", levels=[0.8, 0.2, 0.5]),
            FactorSpec(name="R0", low=0.005, high=0.02),
            FactorSpec(name="n_cells", fixed=4),
        ),
    )
    by_name = {f.name: f for f in factors}
    assert [f.name for f in factors] == ["T_amb", "soc0", "R0", "n_cells"]
    assert (by_name["T_amb"].low, by_name["T_amb"].high, by_name["T_amb"].unit) == (10, 40, "degC")
    assert by_name["soc0"].levels == [0.2, 0.5, 0.8]
    assert (by_name["soc0"].low, by_name["soc0"].high) == (0.2, 0.8)
    assert by_name["R0"].varies
    assert by_name["n_cells"].fixed == 4 and not by_name["n_cells"].varies


def test_factor_without_range_varies_over_the_declared_bounds() -> None:
    [factor] = resolve_factors(PARAMETERS, _spec(FactorSpec(name="T_amb")))
    assert (factor.low, factor.high) == (-20, 60)


def test_empty_spec_varies_every_settable_bounded_parameter() -> None:
    factors = resolve_factors(PARAMETERS, DoeSpec(method="sobol"))
    assert [f.name for f in factors] == ["T_amb", "soc0", "n_cells"]
    assert all(f.varies for f in factors)
    assert factors[2].integer


def test_request_override_beats_the_catalog_and_says_so() -> None:
    factors = resolve_factors(
        PARAMETERS,
        _spec(FactorSpec(name="T_amb", low=10, high=40), FactorSpec(name="soc0")),
        overrides={"T_amb": 25.0, "n_cells": 6.0},
    )
    by_name = {f.name: f for f in factors}
    assert by_name["T_amb"].fixed == 25.0
    assert by_name["T_amb"].note is not None and "would vary it" in by_name["T_amb"].note
    assert by_name["n_cells"].fixed == 6.0 and by_name["n_cells"].note == "fixed by the request"
    assert by_name["soc0"].varies


def test_overrides_leave_the_default_set_of_varied_parameters() -> None:
    factors = resolve_factors(PARAMETERS, DoeSpec(method="sobol"), overrides={"soc0": 0.3})
    assert [(f.name, f.varies) for f in factors] == [("T_amb", True), ("n_cells", True), ("soc0", False)]


def test_integer_parameter_range_is_shrunk_to_whole_numbers() -> None:
    parameters = [Parameter(name="n", type="Int32", min=0.5, max=7.7)]
    [factor] = resolve_factors(parameters, DoeSpec(method="sobol"))
    assert (factor.low, factor.high, factor.integer) == (1.0, 7.0, True)
    assert factor.from_coded(0.1) == 4.0
    assert factor.from_coded(-1.0) == 1.0 and factor.from_coded(1.0) == 7.0


@pytest.mark.parametrize(
    ("factors", "overrides", "message"),
    [
        (
            [FactorSpec(name="T_ambient")],
            None,
            r"unknown parameter 'T_ambient' in the DoE spec.*did you mean T_amb",
        ),
        ([FactorSpec(name="zzz")], None, r"unknown parameter 'zzz' .*settable parameters: C_nom, R0, T_amb"),
        ([FactorSpec(name="R0")], None, r"parameter 'R0' cannot vary: the FMU declares no min and max"),
        (
            [FactorSpec(name="C_nom")],
            None,
            r"parameter 'C_nom' cannot vary: its declared min and max are both 2",
        ),
        (
            [FactorSpec(name="T_amb", low=-30, high=40)],
            None,
            r"'T_amb': low -30 is below its declared min -20",
        ),
        ([FactorSpec(name="T_amb", low=0, high=70)], None, r"'T_amb': high 70 is above its declared max 60"),
        (
            [FactorSpec(name="soc0", levels=[0.5, 1.5])],
            None,
            r"'soc0': level 1.5 is above its declared max 1",
        ),
        ([FactorSpec(name="soc0", fixed=2)], None, r"'soc0': DoE spec value 2 is above its declared max 1"),
        ([FactorSpec(name="I_load")], None, r"'I_load' in the DoE spec cannot be set per run: .*'input'"),
        ([FactorSpec(name="k_const")], None, r"'k_const' .*variability='constant'"),
        ([FactorSpec(name="model_name")], None, r"'model_name' .* is of type String"),
        ([FactorSpec(name="n_cells", levels=[1, 2.5])], None, r"'n_cells' is an integer .*level 2.5 is not"),
        ([FactorSpec(name="T_amb")], {"nope": 1.0}, r"unknown parameter 'nope' in the request's overrides"),
        ([FactorSpec(name="T_amb")], {"soc0": 3.0}, r"'soc0': request override value 3 is above"),
        ([FactorSpec(name="T_amb")], {"n_cells": 2.5}, r"'n_cells' is an integer .*value 2.5 is not"),
        (
            [FactorSpec(name="T_amb")],
            {"soc0": float("nan")},
            r"'soc0': request override value nan is not a finite number",
        ),
        ([FactorSpec(name="T_amb", fixed=20)], None, r"nothing to vary: every factor is fixed"),
        ([FactorSpec(name="T_amb")], {"T_amb": 20.0}, r"nothing to vary"),
    ],
)
def test_each_problem_has_its_own_message_naming_the_parameter(
    factors: list[FactorSpec], overrides: dict[str, float] | None, message: str
) -> None:
    with pytest.raises(DoeError, match=message):
        resolve_factors(PARAMETERS, _spec(*factors), overrides)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(DoeError) as caught:
        resolve_factors(
            PARAMETERS,
            _spec(FactorSpec(name="R0"), FactorSpec(name="nope"), FactorSpec(name="T_amb", low=-99, high=99)),
            overrides={"soc0": 5.0},
        )
    problems = caught.value.problems
    assert len(problems) == 5
    assert isinstance(caught.value, ValueError)
    for name in ("R0", "nope", "T_amb", "soc0"):
        assert any(repr(name) in p for p in problems)


def test_nothing_bounded_to_vary_by_default_tells_how_to_fix_it() -> None:
    with pytest.raises(DoeError, match=r"no settable parameter .* declares both min and max; list the factors"):
        resolve_factors([Parameter(name="R0")], DoeSpec(method="sobol"))


def test_a_parameter_declared_twice_differently_is_ambiguous() -> None:
    twice = [Parameter(name="x", min=0, max=1, fmu="cell"), Parameter(name="x", min=0, max=2, fmu="pack")]
    with pytest.raises(DoeError, match=r"'x' is declared twice .*FMUs cell and pack"):
        resolve_factors(twice, DoeSpec(method="sobol"))


@pytest.mark.parametrize("huge", [float("inf"), 1.7976931348623157e308])
def test_infinite_or_dbl_max_bounds_count_as_none(huge: float) -> None:
    parameter = Parameter(name="x", min=-huge, max=huge)
    assert parameter.min is None and parameter.max is None
    with pytest.raises(DoeError, match=r"'x' cannot vary: the FMU declares no min and max"):
        resolve_factors([parameter], _spec(FactorSpec(name="x")))
    [factor] = resolve_factors([parameter], _spec(FactorSpec(name="x", low=-1, high=1)))
    assert (factor.low, factor.high) == (-1, 1)
