"""The reference Digital Twin's model registry: for each seed UUT, start values that fit its ratings,
and FMUs built with them whose physics says so (the OCV spans the UUT's voltage window, the
capacity and R0 are the scaled cell's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fastlims.messaging.schemas import UutRatingsMessage
from fastlims.peers import model_registry
from fastlims.peers.fmus import build_fmu
from fastlims.peers.model_registry import ModelUnavailable, choose

from ..fmus.fmu_testkit import Cosim

SEED = Path(model_registry.__file__).parents[1] / "catalog" / "seed_catalog.yaml"
UUTS = {uut["code"]: UutRatingsMessage.model_validate(uut) for uut in yaml.safe_load(SEED.read_text())["uuts"]}


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fmu-cache")


def test_a_cell_is_the_calibrated_cell_scaled_to_its_capacity_and_window() -> None:
    gen3b, gen4 = choose(UUTS["Gen3b - Cell"]).start_values, choose(UUTS["Gen4 - Cell"]).start_values
    assert gen3b["Cell"] == {
        "capacity_Ah": 5.0, "R0_ohm": 0.015, "R1_ohm": 0.010, "C1_F": 2000.0, "R2_ohm": 0.008, "C2_F": 50000.0,
        "series_cells": 1.0, "cell_OCV_min_V": 2.5, "cell_OCV_max_V": 4.2, "SOC0": 0.5, "T0_K": 298.15,
        "T_ambient_K": 298.15, "heat_capacity_J_per_K": 70.0, "thermal_resistance_K_per_W": 10.0,
    }  # fmt: skip
    assert gen3b["Cycler"] == {"current_limit_A": 45.0}  # 1.5 x the 30 A pulse rating
    # Gen4: a 10 Ah cell, 3.0..4.3 V: half the resistance, twice the capacitance and heat capacity
    cell = gen4["Cell"]
    assert (cell["capacity_Ah"], cell["cell_OCV_min_V"], cell["cell_OCV_max_V"]) == (10.0, 3.0, 4.3)
    assert cell["R0_ohm"] == pytest.approx(0.0075, rel=1e-12)
    assert cell["C1_F"] == pytest.approx(4000.0, rel=1e-12)
    assert cell["heat_capacity_J_per_K"] == pytest.approx(140.0) and cell["thermal_resistance_K_per_W"] == 5.0


def test_a_module_scales_resistance_by_series_over_parallel_and_keeps_the_time_constants() -> None:
    """Gen3b - Module, 12s4p of 5 Ah cells: R x 12/4, C x 4/12, heat capacity x 48, R_th / 48."""
    choice = choose(UUTS["Gen3b - Module"])
    cell = choice.start_values["Cell"]
    assert cell["series_cells"] == 12.0 and cell["capacity_Ah"] == 20.0
    assert cell["R0_ohm"] == pytest.approx(0.045, rel=1e-12)
    assert cell["R1_ohm"] == pytest.approx(0.030, rel=1e-12) and cell["R2_ohm"] == pytest.approx(0.024, rel=1e-12)
    assert cell["R1_ohm"] * cell["C1_F"] == pytest.approx(20.0)  # tau1, tau2: the calibrated cell's
    assert cell["R2_ohm"] * cell["C2_F"] == pytest.approx(400.0)
    assert (cell["cell_OCV_min_V"], cell["cell_OCV_max_V"]) == (2.5, 4.2)
    assert cell["heat_capacity_J_per_K"] == pytest.approx(70.0 * 48)
    assert cell["thermal_resistance_K_per_W"] == pytest.approx(10.0 / 48)
    assert choice.start_values["Cycler"] == {"current_limit_A": 180.0}
    assert "12s4p" in choice.basis and "R0 45 mOhm" in choice.basis and "capacity 20 Ah" in choice.basis
    assert choice.as_record()["start_values"] == choice.start_values


@pytest.mark.parametrize("code", sorted(UUTS))
def test_every_seed_uuts_fmus_span_its_voltage_window_with_its_capacity(code: str, tmp_path: Path, cache: Path) -> None:
    """Built with the chosen start values: empty at the UUT's min voltage, full at its max, SOC0 half
    way; a 1C discharge for 24 min takes 0.4 of its rated capacity; the channel exceeds the pulse."""
    ratings = UUTS[code]
    choice = choose(ratings)
    starts = choice.start_values
    cell = build_fmu("battery_cell", "3.0", tmp_path, name="Cell", cache_dir=cache, start_values=starts["Cell"])
    for soc, expected in ((0.0, ratings.min_voltage_V), (1.0, ratings.max_voltage_V)):
        with Cosim(cell).initialize(SOC0=soc) as c:
            assert c.value("OCV") == pytest.approx(expected, rel=1e-12), soc
    with Cosim(cell).initialize(I=ratings.nominal_capacity_Ah) as c:
        assert c.value("SOC") == 0.5
        c.run(1440.0, 10.0)
        assert c.value("SOC") == pytest.approx(0.1, abs=1e-9)
    cycler = build_fmu("cycler", "3.0", tmp_path, name="Cycler", cache_dir=cache, start_values=starts["Cycler"])
    with Cosim(cycler).initialize(current_setpoint=10 * ratings.max_pulse_current_A) as c:
        assert c.value("current") == pytest.approx(1.5 * ratings.max_pulse_current_A)


def test_a_request_without_ratings_gets_the_calibrated_cell_half_charged() -> None:
    choice = choose(None)
    assert choice.start_values == {"Cell": {"SOC0": 0.5}, "Cycler": {}}
    assert "no UUT ratings" in choice.basis


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_voltage_V": 4.2, "max_voltage_V": 2.5}, "min_voltage_V 4.2 must be below max_voltage_V 2.5"),
        ({"series_count": 0}, "series_count and parallel_count must be >= 1, got 0 and 1"),
        ({"nominal_capacity_Ah": 0.0}, "nominal_capacity_Ah must be a positive number, got 0.0"),
        ({"max_voltage_V": 42.0}, "the voltage window per cell 2.5-42 V (limits / series_count) is outside"),
        ({"nominal_capacity_Ah": 5000.0, "parallel_count": 1}, "capacity_Ah would be 5000, outside 0.001..1000"),
    ],
)
def test_ratings_the_model_cannot_represent_are_refused_naming_the_rating(
    changes: dict[str, float], message: str
) -> None:
    ratings = UUTS["Gen3b - Cell"].model_copy(update=changes)
    with pytest.raises(ModelUnavailable, match="Gen3b - Cell") as refused:
        choose(ratings)
    assert message in str(refused.value)
