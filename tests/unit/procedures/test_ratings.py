from __future__ import annotations

import dataclasses

import pytest

from fastlims.procedures.ratings import COLUMNS, RatingsError, UutRatings

from .uuts import GEN3B_CELL, GEN3B_PACK, UUTS


def test_six_representative_uuts_are_valid() -> None:
    assert set(UUTS) == {
        "Gen3b - Cell",
        "Gen3b - Module",
        "Gen3b - Pack",
        "Gen4 - Cell",
        "Gen4 - Module",
        "Gen4 - Pack",
    }
    assert GEN3B_PACK.cells == 192
    assert GEN3B_PACK.nominal_capacity_Ah == 100.0
    assert GEN3B_CELL.amperes(1 / 3) == pytest.approx(50.0 / 3)


def test_from_mapping_accepts_catalog_columns_and_round_trips() -> None:
    columns = GEN3B_PACK.as_columns()
    assert set(columns) == set(COLUMNS)
    assert UutRatings.from_mapping(columns) == GEN3B_PACK
    # field names and strings from a CSV import work too
    fields = {k: str(v) for k, v in dataclasses.asdict(GEN3B_CELL).items()}
    assert UutRatings.from_mapping(fields) == GEN3B_CELL


def test_from_mapping_names_every_missing_and_invalid_field() -> None:
    data = dict(GEN3B_CELL.as_columns())
    del data["MaxPulseCurrentA"]
    data["SeriesCount"] = "two"
    data["Format"] = "brick"
    data["NominalCapacityAh"] = float("nan")
    with pytest.raises(RatingsError) as info:
        UutRatings.from_mapping(data)
    text = str(info.value)
    for expected in (
        "MaxPulseCurrentA is missing",
        "SeriesCount must be a whole number",
        "Format must be one of",
        "NominalCapacityAh must be a finite number",
    ):
        assert expected in text
    assert len(info.value.problems) == 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_voltage_V": 4.0}, "NominalVoltageV 3.65 must lie strictly between"),
        ({"max_charge_current_A": -1.0}, "MaxChargeCurrentA must be positive"),
        ({"max_pulse_current_A": 100.0}, "MaxPulseCurrentA 100.0 is below the continuous maximum 150.0"),
        ({"min_temperature_C": 60.0}, "MinTemperatureC 60.0 must be below MaxTemperatureC 55.0"),
        ({"series_count": 2}, "a cell has SeriesCount and ParallelCount 1"),
        ({"nominal_capacity_Ah": 5e7}, "NominalCapacityAh 50000000.0 is implausibly large"),
    ],
)
def test_inconsistent_ratings_are_refused(change: dict[str, float], message: str) -> None:
    with pytest.raises(RatingsError, match=message):
        dataclasses.replace(GEN3B_CELL, **change)
