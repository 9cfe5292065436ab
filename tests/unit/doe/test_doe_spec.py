"""Parsing the DoE section of a catalog entry: both factor forms, and errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fastlims.doe import METHODS, DoeError, DoeSpec, FactorSpec, parse_doe_section

CATALOG_YAML = """
doe:
  method: box_behnken
  run_budget: 30
  seed: 7
  center_points: 3
  factors:
    ambient_temperature: {low: 10, high: 40}
    soc_init: [0.2, 0.5, 0.8]
    capacity_Ah: 3.2
    r0: null
"""


def test_mapping_form_reads_like_the_catalog_author_meant() -> None:
    spec = parse_doe_section(yaml.safe_load(CATALOG_YAML)["doe"])
    assert spec.method == "box_behnken" and spec.run_budget == 30 and spec.seed == 7 and spec.center_points == 3
    assert spec.factors == [
        FactorSpec(name="ambient_temperature", low=10, high=40),
        FactorSpec(name="soc_init", levels=[0.2, 0.5, 0.8]),
        FactorSpec(name="capacity_Ah", fixed=3.2),
        FactorSpec(name="r0"),
    ]


def test_list_form_is_the_same_spec() -> None:
    spec = parse_doe_section(
        {
            "method": "fractional_factorial",
            "resolution": 4,
            "factors": [{"name": "a", "low": 0, "high": 1}, {"name": "b", "levels": [1, 2]}],
        }
    )
    assert spec.resolution == 4
    assert [f.name for f in spec.factors] == ["a", "b"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("box_behnken", r"^doe: expected a mapping"),
        ({}, r"doe\.method: required"),
        ({"method": "taguchi"}, r"doe\.method: Input should be .*got 'taguchi'"),
        ({"method": "sobol", "budget": 8}, r"doe\.budget: unknown field"),
        (
            {"method": "sobol", "run_budget": 0},
            r"doe\.run_budget: Input should be greater than or equal to 1",
        ),
        ({"method": "sobol", "run_budget": "many"}, r"doe\.run_budget: .*got 'many'"),
        ({"method": "sobol", "seed": -1}, r"doe\.seed: Input should be greater than or equal to 0"),
        ({"method": "sobol", "resolution": 4}, r"resolution only applies to fractional_factorial, not sobol"),
        (
            {"method": "sobol", "factors": [{"name": "a", "low": 1}]},
            r"doe\.factors\[0\]: factor 'a': give both",
        ),
        (
            {"method": "sobol", "factors": [{"name": "a", "low": 2, "high": 1}]},
            r"low 2.0 must be below high 1.0",
        ),
        ({"method": "sobol", "factors": [{"name": "a", "levels": [1]}]}, r"at least two distinct values"),
        ({"method": "sobol", "factors": [{"name": "a", "levels": [1, 1, 2]}]}, r"levels repeat a value"),
        (
            {"method": "sobol", "factors": [{"name": "a", "fixed": 1, "low": 0, "high": 2}]},
            r"give only one of",
        ),
        ({"method": "sobol", "factors": [{"name": "a", "lo": 0}]}, r"doe\.factors\[0\]\.lo: unknown field"),
        ({"method": "sobol", "factors": [{"name": "a"}, {"name": "a"}]}, r"listed more than once: a"),
        ({"method": "sobol", "factors": {"a": "hot"}}, r"doe\.factors\.a: expected null, a number"),
        (
            {"method": "sobol", "factors": {"a": {"name": "b", "low": 0, "high": 1}}},
            r"'b' differs from its key",
        ),
        ({"method": "sobol", "factors": {"a": {"low": float("nan"), "high": 1}}}, r"doe\.factors\[0\]\.low"),
        ({"method": "fractional_factorial", "generators": []}, r"generators is empty"),
    ],
)
def test_each_bad_field_is_named(section: object, message: str) -> None:
    with pytest.raises(DoeError, match=message):
        parse_doe_section(section)


def test_where_prefixes_the_field_path() -> None:
    with pytest.raises(DoeError, match=r"catalog\['Electrical - Overcharge'\]\.doe\.method"):
        parse_doe_section({"method": "x"}, where="catalog['Electrical - Overcharge'].doe")


_finite = st.floats(-1e6, 1e6, allow_nan=False)


@st.composite
def _specs(draw: st.DrawFn) -> DoeSpec:
    names = draw(st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), max_size=4, unique=True))
    factors = []
    for name in names:
        kind = draw(st.sampled_from(["none", "range", "levels", "fixed"]))
        if kind == "range":
            low = draw(_finite)
            factors.append(FactorSpec(name=name, low=low, high=low + draw(st.floats(1e-3, 1e3))))
        elif kind == "levels":
            levels = draw(st.lists(_finite, min_size=2, max_size=5, unique=True))
            factors.append(FactorSpec(name=name, levels=levels))
        elif kind == "fixed":
            factors.append(FactorSpec(name=name, fixed=draw(_finite)))
        else:
            factors.append(FactorSpec(name=name))
    method = draw(st.sampled_from(METHODS))
    extra: dict[str, Any] = {}
    if method == "fractional_factorial":
        extra["resolution"] = draw(st.none() | st.integers(3, 6))
    return DoeSpec(
        method=method,
        factors=factors,
        run_budget=draw(st.none() | st.integers(1, 500)),
        seed=draw(st.integers(0, 2**31)),
        center_points=draw(st.none() | st.integers(0, 6)),
        **extra,
    )


@given(spec=_specs())
@settings(max_examples=40, deadline=None)
def test_a_spec_dumped_to_yaml_parses_back_unchanged(spec: DoeSpec) -> None:
    text = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True))
    assert parse_doe_section(yaml.safe_load(text)) == spec


_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(
    section=st.dictionaries(
        st.sampled_from(["method", "factors", "run_budget", "seed", "resolution", "center_points", "x"]),
        _junk | st.sampled_from(METHODS),
        max_size=5,
    )
)
@settings(max_examples=60, deadline=None)
def test_arbitrary_input_gives_a_spec_or_a_doe_error_never_anything_else(section: dict[str, Any]) -> None:
    try:
        spec = parse_doe_section(section)
    except DoeError as exc:
        assert exc.problems and all(p.startswith("doe") or "factor" in p or "only applies" in p for p in exc.problems)
    else:
        assert spec.method in METHODS
