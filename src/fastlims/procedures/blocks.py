"""Building blocks of the default procedures, parameterised by a UUT's ratings.

The defaults are written in the text form (what an engineer would write and read) through a small
:class:`Builder`; every number comes from the ratings. Currents asked for as C-rates are clamped
to the UUT's continuous (or pulse) rating, so a default never asks a UUT for more than it is rated
for unless the step is an ``abuse`` step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.text import parse_text

# Catalog codes of the standards.
UN = ("UN38.3", "IEC62281")
IEC_1 = "IEC62660"
IEC_2 = "IEC62660-2:2020-07"
IEC_3 = "IEC62660-3:2022"
IEC_19 = "IEC62619"
UL1642 = "UL1642"
UL1973 = "UL1973:2022-02-25"
UL9540 = "UL9540"
ISO = "ISO12405.4"

HOUR = 3600
DAY = 24 * HOUR

CELLS = ("cell",)
BATTERIES = ("module", "pack")
PACKS = ("pack",)

#: Tags the outcomes read (see :mod:`.outcomes`).
CAPACITY = "capacity"  # a discharge whose Ah/Wh is the UUT's capacity/energy
OCV_PRE = "ocv_pre"  # a rest whose last voltage is the pre-test OCV
OCV_POST = "ocv_post"  # a rest whose last voltage is the post-test OCV
EFF_CHARGE = "efficiency_charge"  # charge energy of an efficiency measurement
EFF_DISCHARGE = "efficiency_discharge"  # discharge energy of an efficiency measurement
BMS_CHECK = "bms_check"  # a step the UUT's protection is expected to end (by its current condition)
ABUSE = "abuse"
STANDARD_CHARGE = "standard_charge"


def num(value: float) -> str:
    """A number for the text form: at most 4 decimals, no trailing zeros."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def exact(value: float) -> str:
    """A number written so that it reads back as the same float."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def c_rate_text(rate: float) -> str:
    """``1/3`` -> ``C/3``, ``2`` -> ``2C``."""
    if 0 < rate < 1 and abs(1 / rate - round(1 / rate)) < 1e-9:
        return f"C/{round(1 / rate)}"
    return f"{num(rate)}C"


def duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hours"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} minutes"
    return f"{num(seconds)} s"


class Builder:
    """Accumulates the lines of a default procedure; :meth:`build` parses them."""

    def __init__(self, r: UutRatings, *, name: str, description: str, standard: str | None, abuse: bool = False):
        self.r = r
        self.head = [f"# name: {name}", f"# description: {description}"]
        if standard:
            self.head.append(f"# standard: {standard}")
        if abuse:
            self.head.append("# abuse: true")
        self.body: list[str] = []
        self.depth = 0

    # ---------------------------------------------------------------- raw lines

    def line(self, text: str, *, label: str | None = None, tags: Sequence[str] = ()) -> None:
        notes = []
        if label:
            notes.append(f'label="{label}"')
        if tags:
            notes.append("tags=" + ",".join(tags))
        self.body.append("    " * self.depth + text + ("  # " + " ".join(notes) if notes else ""))

    def variable(self, name: str, value: float, low: float, high: float, unit: str, description: str) -> None:
        low, high = min(low, value), max(high, value)
        self.head.append(
            f"# variable: {name} value={exact(value)} min={exact(low)} max={exact(high)} unit={unit} "
            f'description="{description}"'
        )

    def rate_variable(self, value: float, low: float, high: float) -> None:
        """A ``discharge_rate`` variable (unit C), its range capped at MaxDischargeCurrentA."""
        r = self.r
        ceiling = r.max_discharge_current_A / r.nominal_capacity_Ah
        self.variable(
            "discharge_rate", min(value, ceiling), min(low, ceiling), min(high, ceiling), "C", "discharge C-rate"
        )

    def safety(self, **limits: float) -> None:
        self.head.append("# safety: " + " ".join(f"{key}={num(value)}" for key, value in limits.items()))

    @contextmanager
    def repeat(self, count: int | str, *, cycle: bool | None = None) -> Iterator[None]:
        suffix = "" if cycle is None else (" counting cycles" if cycle else " not counting cycles")
        self.line(f"Repeat {count} times{suffix}:")
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def build(self) -> Procedure:
        return parse_text("\n".join(self.head + self.body) + "\n").procedure

    # ---------------------------------------------------------------- currents

    def current(self, rate: float, direction: str, *, pulse: bool = False) -> str:
        """A C-rate as text, clamped to the rating (then written in amperes)."""
        r = self.r
        limit = (
            r.max_pulse_current_A
            if pulse
            else (r.max_charge_current_A if direction == "charge" else r.max_discharge_current_A)
        )
        if rate * r.nominal_capacity_Ah <= limit * (1 + 1e-9):
            return c_rate_text(rate)
        return f"{num(limit)} A"

    def amps(self, rate: float, direction: str, *, pulse: bool = False) -> float:
        r = self.r
        limit = (
            r.max_pulse_current_A
            if pulse
            else (r.max_charge_current_A if direction == "charge" else r.max_discharge_current_A)
        )
        return min(rate * r.nominal_capacity_Ah, limit)

    # ---------------------------------------------------------------- temperatures

    @property
    def soak_s(self) -> int:
        """Thermal soak: long enough for the core of the UUT to reach the ambient."""
        return {"cell": 4, "module": 8, "pack": 12}[self.r.format] * 3600

    def warm(self, wanted: float) -> float:
        """A high test temperature inside the rating, leaving room for the UUT's self-heating."""
        return min(wanted, self.r.max_temperature_C - 10.0)

    def cold(self, wanted: float) -> float:
        return max(wanted, self.r.min_temperature_C)

    def soak(self, temperature: float | str, *, seconds: int | None = None, tags: Sequence[str] = ()) -> None:
        """Set the ambient and rest: the full soak away from room temperature, a quarter of it
        at 20-30 degC (the UUT comes from the lab at room temperature)."""
        value = temperature if isinstance(temperature, str) else num(temperature)
        if seconds is None:
            room = not isinstance(temperature, str) and 20.0 <= temperature <= 30.0
            seconds = self.soak_s // 4 if room else self.soak_s
        self.line(
            f"Set ambient to {value} degC and rest for {duration(seconds)}",
            label="thermal soak",
            tags=tags,
        )

    # ---------------------------------------------------------------- electrical blocks

    def rest(self, seconds: float, *, label: str | None = None, tags: Sequence[str] = ()) -> None:
        self.line(f"Rest for {duration(seconds)}", label=label, tags=tags)

    def standard_charge(self, rate: float = 1 / 3, *, tags: Sequence[str] = ()) -> None:
        """CC at ``rate`` (clamped) to MaxVoltageV, then CV until C/20: the manufacturer's usual
        CC-CV method, which IEC 62660-1 / ISO 12405-4 call the standard charge."""
        r = self.r
        all_tags = (STANDARD_CHARGE, *tags)
        self.line(
            f"Charge at {self.current(rate, 'charge')} until {num(r.max_voltage_V)} V",
            label="standard charge (CC)",
            tags=all_tags,
        )
        self.line(
            f"Hold at {num(r.max_voltage_V)} V until C/20 or 3 hours", label="standard charge (CV)", tags=all_tags
        )

    def discharge_to_min(
        self, rate: float | str = 1 / 3, *, label: str | None = None, tags: Sequence[str] = ()
    ) -> None:
        text = f"{rate}C" if isinstance(rate, str) else self.current(rate, "discharge")
        self.line(f"Discharge at {text} until {num(self.r.min_voltage_V)} V", label=label, tags=tags)

    def to_soc(self, soc_from: float, soc_to: float, *, rate: float = 1 / 3) -> None:
        """Discharge at ``rate`` by (soc_from - soc_to) x the nominal capacity (or to MinVoltageV)."""
        amp_hours = (soc_from - soc_to) * self.r.nominal_capacity_Ah
        current, floor = self.current(rate, "discharge"), num(self.r.min_voltage_V)
        self.line(
            f"Discharge at {current} until {num(amp_hours)} Ah or {floor} V",
            label=f"adjust to {round(soc_to * 100)} % SOC",
        )

    def ocv(self, tag: str, seconds: int = 3600) -> None:
        label = "pre-test OCV" if tag == OCV_PRE else "post-test OCV"
        self.rest(seconds, label=label, tags=(tag,))

    def external(self, action: str, seconds: float, description: str) -> None:
        quoted = description.replace("\\", "\\\\").replace('"', '\\"')
        self.line(f'External {action} for {duration(seconds)} "{quoted}"', label=f"{action} (fixture)")

    def pulses(self, rates: Sequence[float], *, seconds: float = 10, rest_s: float = 40, regen: float = 0.75) -> None:
        """Discharge pulses of increasing current, each followed by a rest and a regenerative
        charge pulse of ``regen`` x that current (both within MaxPulseCurrentA)."""
        for rate in rates:
            self.line(
                f"Pulse discharge at {self.current(rate, 'discharge', pulse=True)} for {duration(seconds)}",
                label=f"discharge pulse {c_rate_text(rate)}",
            )
            self.rest(rest_s)
            self.line(
                f"Pulse charge at {self.current(rate * regen, 'charge', pulse=True)} for {duration(seconds)}",
                label=f"charge pulse {c_rate_text(rate * regen)}",
            )
            self.rest(rest_s)


# --------------------------------------------------------------------------- test specifications


@dataclass(frozen=True)
class TestSpec:
    """How one catalog test name gets its default: the builder, the standards it has defaults for,
    the criterion (None: the standard states no pass/fail), the UUT formats it applies to, and
    what to say when a format does not fit (e.g. "T.7 applies to rechargeable batteries ...")."""

    __test__ = False  # not a pytest class

    build: Callable[[UutRatings, str], Procedure]
    standards: tuple[str, ...]
    criterion: Callable[[UutRatings, str], Criterion] | None = None
    formats: tuple[str, ...] = ("cell", "module", "pack")
    level_note: str = ""


def builder(r: UutRatings, code: str, std: str, title: str, summary: str, *, abuse: bool = False) -> Builder:
    return Builder(
        r,
        name=f"{title} ({std}, {r.code})",
        description=f"{code}: {summary} Values summarised from {std}; the standard's text governs.",
        standard=std,
        abuse=abuse,
    )


def charge_fully(b: Builder, temperature: float = 25.0) -> None:
    """Conditioning before a safety test: soak, standard charge to 100 % SOC, 1 h rest."""
    b.soak(temperature)
    b.standard_charge()
    b.rest(HOUR)


def fixture_test(
    r: UutRatings,
    code: str,
    std: str,
    title: str,
    action: str,
    seconds: float,
    what: str,
    *,
    observe_s: int = HOUR,
    soc: float = 1.0,
    ocv: bool = False,
    temperature: float = 25.0,
    charged: bool = True,
) -> Procedure:
    """A fixture action wrapped in pre-conditioning (charge, SOC) and post-test observation."""
    b = builder(r, code, std, title, what)
    if charged:
        charge_fully(b, temperature)
        if soc < 1.0:
            b.to_soc(1.0, soc)
            b.rest(HOUR)
    if ocv:
        b.ocv(OCV_PRE)
    b.external(action, seconds, what)
    b.rest(observe_s, label="post-test observation", tags=(OCV_POST,) if ocv else ())
    return b.build()


def observation(text: str) -> Callable[[UutRatings, str], Criterion]:
    def make(r: UutRatings, std: str) -> Criterion:
        return Criterion(text=text, check="observation", observed=text, source=std)

    return make
