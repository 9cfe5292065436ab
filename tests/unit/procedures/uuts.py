"""Representative ratings of the seed catalog's six UUTs (plausible for chemistry and format,
not data sheets): Gen3b = NMC/graphite with liquid electrolyte, Gen4 = solid-state cells with an
oxide-polymer electrolyte; modules of 12 cells in series, packs of 8 modules (96s)."""

from __future__ import annotations

from fastlims.procedures.ratings import UutRatings


def _scaled(code: str, cell: UutRatings, fmt: str, series: int, parallel: int) -> UutRatings:
    return UutRatings(
        code=code,
        chemistry=cell.chemistry,
        format=fmt,  # type: ignore[arg-type]
        series_count=series,
        parallel_count=parallel,
        nominal_capacity_Ah=cell.nominal_capacity_Ah * parallel,
        nominal_voltage_V=round(cell.nominal_voltage_V * series, 6),
        min_voltage_V=round(cell.min_voltage_V * series, 6),
        max_voltage_V=round(cell.max_voltage_V * series, 6),
        max_charge_current_A=cell.max_charge_current_A * parallel,
        max_discharge_current_A=cell.max_discharge_current_A * parallel,
        max_pulse_current_A=cell.max_pulse_current_A * parallel,
        min_temperature_C=cell.min_temperature_C,
        max_temperature_C=cell.max_temperature_C,
    )


GEN3B_CELL = UutRatings(
    code="Gen3b - Cell",
    chemistry="NMC811/graphite, liquid electrolyte",
    format="cell",
    series_count=1,
    parallel_count=1,
    nominal_capacity_Ah=50.0,
    nominal_voltage_V=3.65,
    min_voltage_V=2.5,
    max_voltage_V=4.2,
    max_charge_current_A=50.0,
    max_discharge_current_A=150.0,
    max_pulse_current_A=250.0,
    min_temperature_C=-20.0,
    max_temperature_C=55.0,
)
GEN4_CELL = UutRatings(
    code="Gen4 - Cell",
    chemistry="NMC/lithium metal, oxide-polymer solid electrolyte",
    format="cell",
    series_count=1,
    parallel_count=1,
    nominal_capacity_Ah=20.0,
    nominal_voltage_V=3.7,
    min_voltage_V=3.0,
    max_voltage_V=4.3,
    max_charge_current_A=10.0,
    max_discharge_current_A=40.0,
    max_pulse_current_A=60.0,
    min_temperature_C=-10.0,
    max_temperature_C=70.0,
)
GEN3B_MODULE = _scaled("Gen3b - Module", GEN3B_CELL, "module", 12, 2)
GEN3B_PACK = _scaled("Gen3b - Pack", GEN3B_CELL, "pack", 96, 2)
GEN4_MODULE = _scaled("Gen4 - Module", GEN4_CELL, "module", 12, 1)
GEN4_PACK = _scaled("Gen4 - Pack", GEN4_CELL, "pack", 96, 1)

UUTS: dict[str, UutRatings] = {
    r.code: r for r in (GEN3B_CELL, GEN3B_MODULE, GEN3B_PACK, GEN4_CELL, GEN4_MODULE, GEN4_PACK)
}


# The reference battery cell FMU's own ratings (5 Ah, OCV 2.5-4.2 V): what tests that run a procedure
# on that cell (the virtual bench, the bench emulator) resolve against.
REFERENCE_CELL = UutRatings(
    code="Gen3b - Cell",
    chemistry="NMC/graphite",
    format="cell",
    series_count=1,
    parallel_count=1,
    nominal_capacity_Ah=5.0,
    nominal_voltage_V=3.65,
    min_voltage_V=2.5,
    max_voltage_V=4.2,
    max_charge_current_A=5.0,
    max_discharge_current_A=15.0,
    max_pulse_current_A=30.0,
    min_temperature_C=-20.0,
    max_temperature_C=60.0,
)
