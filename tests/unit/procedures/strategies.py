"""Hypothesis strategies for procedures (any valid Procedure the models accept)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from fastlims.procedures.model import ACTIONS, TERMINATION_KEYS, Procedure

_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_POSITIVE = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
_ANY = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
_ONE_LINE = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=30)


def _maybe_var(numbers: st.SearchStrategy[float], names: list[str]) -> st.SearchStrategy[Any]:
    if not names:
        return numbers
    return st.one_of(numbers, st.sampled_from([f"{{{n}}}" for n in names]))


def _termination(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    def build(key: str) -> st.SearchStrategy[dict[str, Any]]:
        signed = key.startswith(("voltage", "temperature"))
        return _maybe_var(_ANY if signed else _POSITIVE, names).map(lambda v: {key: v})

    return st.sampled_from(TERMINATION_KEYS).flatmap(build)


def _common() -> st.SearchStrategy[dict[str, Any]]:
    tag = st.from_regex(r"[A-Za-z0-9_.:-]{1,10}", fullmatch=True)
    return st.fixed_dictionaries({}, optional={"label": _ONE_LINE, "tags": st.lists(tag, min_size=1, max_size=3)})


def _leaf(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    until = st.lists(_termination(names), max_size=3)
    pos = _maybe_var(_POSITIVE, names)
    direction = st.sampled_from(["charge", "discharge"])
    current = st.one_of(pos.map(lambda v: {"current_A": v}), pos.map(lambda v: {"c_rate": v}))
    points = st.lists(st.tuples(st.floats(0.001, 100, allow_nan=False), _ANY), min_size=1, max_size=5).map(
        lambda raw: [[sum(p[0] for p in raw[: i + 1]), raw[i][1]] for i in range(len(raw))]
    )
    kinds = [
        st.fixed_dictionaries({"type": st.just("rest"), "until": until}),
        st.fixed_dictionaries({"type": st.just("cc"), "direction": direction, "until": until}).flatmap(
            lambda d: current.map(lambda c: d | c)
        ),
        st.fixed_dictionaries(
            {"type": st.just("cv"), "voltage_V": _maybe_var(_ANY, names), "until": until},
            optional={"current_limit_A": pos},
        ),
        st.fixed_dictionaries({"type": st.just("cp"), "direction": direction, "power_W": pos, "until": until}),
        st.fixed_dictionaries({"type": st.just("pulse"), "direction": direction, "duration_s": pos}).flatmap(
            lambda d: current.map(lambda c: d | c)
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("profile"),
                "quantity": st.sampled_from(["current", "power", "voltage"]),
                "interpolation": st.sampled_from(["previous", "linear"]),
                "until": until,
            }
        ).flatmap(
            lambda d: st.one_of(points.map(lambda p: d | {"points": p}), st.just(d | {"source": "custom_profile"}))
        ),
        st.fixed_dictionaries({"type": st.just("ambient"), "temperature_C": _maybe_var(_ANY, names), "until": until}),
        st.fixed_dictionaries(
            {
                "type": st.just("external"),
                "action": st.sampled_from(ACTIONS),
                "description": st.text(max_size=40),
                "duration_s": pos,
            }
        ),
    ]
    return st.tuples(st.one_of(kinds), _common()).map(lambda pair: pair[0] | pair[1])


def _steps(names: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    count = (
        st.integers(1, 1000)
        if not names
        else st.one_of(st.integers(1, 1000), st.sampled_from([f"{{{n}}}" for n in names]))
    )
    return st.recursive(
        st.lists(_leaf(names), min_size=1, max_size=4),
        lambda inner: st.lists(
            st.one_of(
                _leaf(names),
                st.fixed_dictionaries(
                    {"type": st.just("repeat"), "count": count, "steps": inner},
                    optional={"cycle": st.booleans()},
                ),
            ),
            min_size=1,
            max_size=4,
        ),
        max_leaves=12,
    )


@st.composite
def procedures(draw: st.DrawFn) -> Procedure:
    names = draw(st.lists(_NAMES, max_size=3, unique=True))
    variables = {}
    for name in names:
        value = draw(_ANY)
        variables[name] = {
            "value": value,
            "min": value - draw(_POSITIVE),
            "max": value + draw(_POSITIVE),
            "unit": draw(st.sampled_from(["", "C", "degC", "s"])),
            "description": draw(_ONE_LINE),
        }
    document: dict[str, Any] = {
        "name": draw(st.text(min_size=1, max_size=30)),
        "description": draw(st.text(max_size=40)),
        "abuse": draw(st.booleans()),
        "variables": variables,
        "steps": draw(_steps(names)),
    }
    if draw(st.booleans()):
        document["standard"] = draw(st.sampled_from(["IEC62660", "UN38.3", "UL1973:2022-02-25"]))
    if draw(st.booleans()):
        document["safety"] = {
            "max_voltage_V": draw(_ANY),
            "delay_s": draw(st.floats(0, 10)),
            "max_charge_current_A": draw(_POSITIVE),
        }
    if draw(st.booleans()):
        document["sampling"] = {"period_s": draw(st.floats(0.01, 60)), "voltage_delta_V": draw(_POSITIVE)}
    return Procedure.model_validate(document)
