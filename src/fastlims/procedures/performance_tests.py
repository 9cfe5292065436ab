"""Default procedures of the performance and ageing test names (IEC 62660-1 for cells, ISO 12405-4
for modules and packs).

Values are summarised from the standards; the purchased standard text always governs. See
:mod:`fastlims.procedures.defaults` for the rules every default follows.
"""

from __future__ import annotations

from collections.abc import Callable

from fastlims.procedures.blocks import (
    CAPACITY,
    DAY,
    EFF_CHARGE,
    EFF_DISCHARGE,
    HOUR,
    IEC_1,
    ISO,
    Builder,
    TestSpec,
    builder,
    c_rate_text,
    num,
)
from fastlims.procedures.criteria import Criterion
from fastlims.procedures.model import Procedure
from fastlims.procedures.ratings import UutRatings

# --------------------------------------------------------------------------- performance


def _precondition(r: UutRatings, std: str) -> Procedure:
    what = (
        "preconditioning: cycled at room temperature with standard charge and C/3 discharge (up to 5 cycles) "
        "until the discharged capacity is stable (change below 3 % between consecutive cycles)."
    )
    b = builder(r, "PERF-PRECONDITION", std, "Preconditioning cycles", what)
    b.soak(25.0)
    with b.repeat(5):
        b.standard_charge()
        b.rest(HOUR)
        b.discharge_to_min(label="capacity discharge", tags=(CAPACITY,))
        b.rest(HOUR)
    return b.build()


def _precondition_criterion(r: UutRatings, std: str) -> Criterion:
    return Criterion(
        text="until the discharged capacity is stable (change below 3 % between consecutive cycles)",
        check="capacity_stable",
        threshold=0.03,
        source=std,
    )


def _capacity_rt(r: UutRatings, std: str) -> Procedure:
    what = (
        "capacity and energy at room temperature: after a standard charge at 25 degC the UUT is discharged at "
        "C/3 (BEV / high-energy; 1 C for HEV / high-power: the discharge_rate variable) to the end-of-discharge "
        "voltage; discharged capacity (Ah) and energy (Wh), repeated for reproducibility."
    )
    b = builder(r, "PERF-CAPACITY-RT", std, "Capacity and energy at room temperature", what)
    b.rate_variable(1 / 3, 1 / 3, 1.0)
    b.soak(25.0)
    with b.repeat(2):
        b.standard_charge()
        b.rest(HOUR)
        b.discharge_to_min("{discharge_rate}", label="capacity discharge", tags=(CAPACITY,))
        b.rest(HOUR)
    return b.build()


def _capacity_temp(r: UutRatings, std: str) -> Procedure:
    b0 = Builder(r, name="", description="", standard=None)
    low, high = b0.cold(-20.0), b0.warm(45.0)
    what = (
        "capacity and energy at a test temperature (the ambient_C variable: the DoE's levels give the standard's "
        f"temperatures, e.g. -20, 0, 25 and 40-45 degC, here within {num(low)}..{num(high)} degC): standard charge "
        "at 25 degC, thermal soak at the test temperature, discharge at C/3 (high-energy) or 1 C (high-power)."
    )
    b = builder(r, "PERF-CAPACITY-TEMP", std, "Capacity and energy at different temperatures", what)
    b.variable("ambient_C", max(low, 0.0), low, high, "degC", "test temperature")
    b.rate_variable(1 / 3, 1 / 3, 1.0)
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.soak("{ambient_C}")
    b.discharge_to_min("{discharge_rate}", label="capacity discharge at the test temperature", tags=(CAPACITY,))
    b.soak(25.0)
    return b.build()


def _capacity_rate(r: UutRatings, std: str) -> Procedure:
    ceiling = r.max_discharge_current_A / r.nominal_capacity_Ah
    what = (
        "capacity and energy at different discharge rates: at 25 degC, after a standard charge each time, "
        "discharged at increasing constant rates (C/3, 1 C, 2 C and the maximum permitted rate "
        f"{c_rate_text(ceiling)} for high-energy UUTs)."
    )
    b = builder(r, "PERF-CAPACITY-RATE", std, "Capacity and energy at different discharge rates", what)
    rates = sorted({rate for rate in (1 / 3, 1.0, 2.0, ceiling) if rate <= ceiling + 1e-9})
    b.soak(25.0)
    for rate in rates:
        b.standard_charge()
        b.rest(HOUR)
        b.discharge_to_min(rate, label=f"capacity at {c_rate_text(rate)}", tags=(CAPACITY,))
        b.rest(HOUR)
    return b.build()


def _power_ir(r: UutRatings, std: str) -> Procedure:
    pulse_ceiling = r.max_pulse_current_A / r.nominal_capacity_Ah
    rates = sorted({rate for rate in (1.0, 2.0, pulse_ceiling) if rate <= pulse_ceiling + 1e-9})
    what = (
        "power and internal resistance: 10 s discharge and regenerative charge pulses of increasing current "
        f"({', '.join(c_rate_text(x) for x in rates)}) at 80, 50 and 20 % SOC set by C/3 discharge with 30 min "
        "rests, at the ambient_C test temperature; DC internal resistance from the voltage response."
    )
    b = builder(r, "PERF-POWER-IR", std, "Power and internal resistance", what)
    b.variable("ambient_C", 25.0, b.cold(0.0), b.warm(40.0), "degC", "test temperature")
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.soak("{ambient_C}")
    soc = 1.0
    for target in (0.8, 0.5, 0.2):
        b.to_soc(soc, target)
        b.rest(30 * 60)
        b.pulses(rates)
        soc = target
    b.soak(25.0, seconds=HOUR)
    return b.build()


def _energy_eff(r: UutRatings, std: str) -> Procedure:
    what = (
        "energy efficiency (round trip): at the ambient_C temperature, the ratio of the energy discharged to the "
        "energy charged at C/3 between 50 % and 20 % SOC."
    )
    b = builder(r, "PERF-ENERGY-EFF", std, "Energy efficiency (round trip)", what)
    b.variable("ambient_C", 25.0, b.cold(0.0), b.warm(45.0), "degC", "test temperature")
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.soak("{ambient_C}")
    b.to_soc(1.0, 0.5)
    b.rest(30 * 60)
    swing = 0.3 * r.nominal_capacity_Ah
    b.line(
        f"Discharge at {b.current(1 / 3, 'discharge')} until {num(swing)} Ah or {num(r.min_voltage_V)} V",
        label="efficiency discharge 50 -> 20 % SOC",
        tags=(EFF_DISCHARGE,),
    )
    b.rest(30 * 60)
    b.line(
        f"Charge at {b.current(1 / 3, 'charge')} until {num(swing)} Ah or {num(r.max_voltage_V)} V",
        label="efficiency charge 20 -> 50 % SOC",
        tags=(EFF_CHARGE,),
    )
    b.rest(30 * 60)
    return b.build()


def _fastchg_eff(r: UutRatings, std: str) -> Procedure:
    what = (
        "energy efficiency at fast charging: from a low SOC (discharged to MinVoltageV) fast-charged at the "
        f"maximum charging current ({num(r.max_charge_current_A)} A) then discharged at C/3 at 25 degC; charge "
        "time, temperature rise and energy efficiency (Wh out / Wh in)."
    )
    b = builder(r, "PERF-FASTCHG-EFF", std, "Energy efficiency at fast charging", what)
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="to low SOC")
    b.rest(HOUR)
    b.line(
        f"Charge at {num(r.max_charge_current_A)} A until {num(r.max_voltage_V)} V",
        label="fast charge",
        tags=(EFF_CHARGE,),
    )
    b.line(f"Hold at {num(r.max_voltage_V)} V until C/20 or 2 hours", label="fast charge (CV)", tags=(EFF_CHARGE,))
    b.rest(HOUR)
    b.discharge_to_min(label="C/3 discharge", tags=(EFF_DISCHARGE, CAPACITY))
    return b.build()


def _cranking(code: str, title: str, wanted: float) -> Callable[[UutRatings, str], Procedure]:
    def build(r: UutRatings, std: str) -> Procedure:
        b0 = Builder(r, name="", description="", standard=None)
        temperature = b0.cold(wanted) if wanted < 25 else b0.warm(wanted)
        what = (
            f"cranking power: after soaking at {num(temperature)} degC at 20 % SOC, three 2 s pulses at the minimum "
            "voltage limit (a hold at MinVoltageV limited to MaxPulseCurrentA) with 10 s rests; the cranking power "
            "is the minimum voltage x the current delivered."
        )
        b = builder(r, code, std, title, what)
        b.soak(25.0)
        b.standard_charge()
        b.rest(HOUR)
        b.to_soc(1.0, 0.2)
        b.soak(temperature)
        with b.repeat(3, cycle=False):
            b.line(
                f"Hold at {num(r.min_voltage_V)} V limited to {num(r.max_pulse_current_A)} A for 2 s",
                label="cranking pulse",
            )
            b.rest(10)
        b.soak(25.0, seconds=HOUR)
        return b.build()

    return build


def _noload_soc_loss(r: UutRatings, std: str) -> Procedure:
    what = (
        "no-load SOC loss: the charged battery stands at open circuit with its BMS in the parked state at the "
        "ambient_C temperature for storage_s (24 h to 7 days); the SOC loss is the residual-capacity discharge "
        "against the capacity before."
    )
    b = builder(r, "PERF-NOLOAD-SOC-LOSS", std, "No-load SOC loss", what)
    b.variable("ambient_C", 25.0, 25.0, b.warm(45.0), "degC", "storage temperature")
    b.variable("storage_s", 7 * DAY, DAY, 7 * DAY, "s", "storage time")
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="capacity before storage", tags=(CAPACITY,))
    b.rest(HOUR)
    b.standard_charge()
    b.line("Set ambient to {ambient_C} degC and rest for {storage_s} s", label="storage at open circuit")
    b.soak(25.0)
    b.discharge_to_min(label="residual capacity", tags=(CAPACITY,))
    return b.build()


# --------------------------------------------------------------------------- ageing


def _checkup(b: Builder, tag: str = CAPACITY) -> None:
    """Capacity (and a 1C pulse for power/DCIR) at 25 degC."""
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.to_soc(1.0, 0.5)
    b.rest(30 * 60)
    b.pulses([1.0])
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="check-up capacity", tags=(tag,))
    b.rest(HOUR)


def _charge_retention(r: UutRatings, std: str) -> Procedure:
    b0 = Builder(r, name="", description="", standard=None)
    storage = b0.warm(45.0)
    days = 30 if std == ISO else 28
    what = (
        f"charge retention: capacity at 25 degC, then the charged UUT stored at open circuit for {days} days at "
        f"{num(storage)} degC; retained capacity (discharge at 25 degC after storage) and recovered capacity "
        "(after a fresh standard charge) at C/3."
    )
    b = builder(r, "AGE-CHARGE-RETENTION", std, "Charge retention (SOC loss at storage)", what)
    b.soak(25.0)
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="initial capacity", tags=(CAPACITY,))
    b.rest(HOUR)
    b.standard_charge()
    b.soak(storage, seconds=days * DAY)
    b.soak(25.0)
    b.discharge_to_min(label="retained capacity", tags=(CAPACITY,))
    b.rest(HOUR)
    b.standard_charge()
    b.rest(HOUR)
    b.discharge_to_min(label="recovered capacity", tags=(CAPACITY,))
    return b.build()


def _calendar_life(r: UutRatings, std: str) -> Procedure:
    b0 = Builder(r, name="", description="", standard=None)
    storage = b0.warm(45.0)
    what = (
        f"storage (calendar) life, one block: check-up at 25 degC, storage at 100 % SOC at {num(storage)} degC for "
        "42 days, check-up (capacity and 1C pulse) at 25 degC. Repeated by further requests until the "
        "end-of-test criterion."
    )
    b = builder(r, "AGE-CALENDAR-LIFE", std, "Storage (calendar) life block", what)
    _checkup(b)
    b.standard_charge()
    b.soak(storage, seconds=42 * DAY)
    _checkup(b)
    return b.build()


def _bev_profile(b: Builder) -> tuple[str, float]:
    """A dynamic discharge profile (representative of IEC 62660-1's BEV cycle shape, scaled to the
    UUT's C-rate and clamped to its ratings): points text and the net charge it removes (Ah)."""
    shape = [(0, -0.5), (60, -1.0), (90, -0.25), (150, 0.25), (170, -0.5), (240, -2.0), (250, -0.5), (360, -0.5)]
    points: list[tuple[float, float]] = []
    for t, rate in shape:
        amps = b.amps(abs(rate), "charge" if rate > 0 else "discharge")
        points.append((float(t), amps if rate > 0 else -amps))
    removed = -sum(points[i][1] * (points[i + 1][0] - points[i][0]) for i in range(len(points) - 1)) / 3600
    return "; ".join(f"{num(t)} {num(v)}" for t, v in points), removed


def _cycle_life_bev(r: UutRatings, std: str) -> Procedure:
    b0 = Builder(r, name="", description="", standard=None)
    ambient = b0.warm(45.0)
    table, removed = _bev_profile(b0)
    repeats = max(1, int(0.8 * r.nominal_capacity_Ah / removed))
    what = (
        f"cycle life (BEV / high-energy), one block: check-up at 25 degC; "
        f"then at {num(ambient)} degC (the ambient_C variable) the cycles "
        f"variable's count of: standard charge, a dynamic discharge profile repeated {repeats} times (about 80 % "
        "DOD, ends at MinVoltageV), rest; check-up at 25 degC."
    )
    b = builder(r, "AGE-CYCLE-LIFE-BEV", std, "Cycle life block (BEV profile)", what)
    b.head.append('# variable: cycles value=100 unit=cycles description="cycles in the block"')
    _checkup(b)
    b.variable("ambient_C", ambient, 25.0, b.warm(60.0), "degC", "ageing temperature")
    b.soak("{ambient_C}")
    with b.repeat("{cycles}"):
        b.standard_charge()
        b.rest(30 * 60)
        with b.repeat(repeats, cycle=False):
            b.line(f"Follow current profile until below {num(r.min_voltage_V)} V: {table}", label="BEV profile")
        b.rest(30 * 60)
    _checkup(b)
    return b.build()


def _cycle_life_hev(r: UutRatings, std: str) -> Procedure:
    b0 = Builder(r, name="", description="", standard=None)
    ambient = b0.warm(45.0)
    amps = min(2.5 * r.nominal_capacity_Ah, r.max_pulse_current_A)
    table = f"0 {num(-amps)}; 10 0; 20 {num(amps)}; 30 0; 40 0"
    what = (
        f"cycle life (HEV / high-power), one block: check-up at 25 degC; "
        f"then at {num(ambient)} degC (the ambient_C variable) around 50 % "
        f"SOC the cycles variable's count of a charge-balanced pulse profile (10 s at {num(amps)} A discharge, "
        "10 s rest, 10 s charge, 10 s rest); check-up at 25 degC."
    )
    b = builder(r, "AGE-CYCLE-LIFE-HEV", std, "Cycle life block (HEV profile)", what)
    b.head.append('# variable: cycles value=20000 unit=cycles description="profiles in the block"')
    _checkup(b)
    b.standard_charge()
    b.rest(HOUR)
    b.to_soc(1.0, 0.5)
    b.variable("ambient_C", ambient, 25.0, b.warm(60.0), "degC", "ageing temperature")
    b.soak("{ambient_C}")
    with b.repeat("{cycles}"):
        b.line(
            f"Follow current profile until below {num(r.min_voltage_V)} V or above {num(r.max_voltage_V)} V: {table}",
            label="HEV pulse profile",
        )
    _checkup(b)
    return b.build()


TESTS: dict[str, TestSpec] = {
    "PERF-PRECONDITION": TestSpec(_precondition, (IEC_1, ISO), _precondition_criterion),
    "PERF-CAPACITY-RT": TestSpec(_capacity_rt, (IEC_1, ISO)),
    "PERF-CAPACITY-TEMP": TestSpec(_capacity_temp, (IEC_1, ISO)),
    "PERF-CAPACITY-RATE": TestSpec(_capacity_rate, (IEC_1, ISO)),
    "PERF-POWER-IR": TestSpec(_power_ir, (IEC_1, ISO)),
    "PERF-ENERGY-EFF": TestSpec(_energy_eff, (IEC_1, ISO)),
    "PERF-FASTCHG-EFF": TestSpec(_fastchg_eff, (ISO,)),
    "PERF-CRANK-LOW-TEMP": TestSpec(
        _cranking("PERF-CRANK-LOW-TEMP", "Cranking power at low temperature", -18.0), (ISO,)
    ),
    "PERF-CRANK-HIGH-TEMP": TestSpec(
        _cranking("PERF-CRANK-HIGH-TEMP", "Cranking power at high temperature", 50.0), (ISO,)
    ),
    "PERF-NOLOAD-SOC-LOSS": TestSpec(_noload_soc_loss, (ISO,)),
    "AGE-CHARGE-RETENTION": TestSpec(_charge_retention, (IEC_1, ISO)),
    "AGE-CALENDAR-LIFE": TestSpec(_calendar_life, (IEC_1,)),
    "AGE-CYCLE-LIFE-BEV": TestSpec(_cycle_life_bev, (IEC_1, ISO)),
    "AGE-CYCLE-LIFE-HEV": TestSpec(_cycle_life_hev, (IEC_1, ISO)),
}
