"""The run plot: min/max downsampling keeps every peak, the SVG goes inline beside others (ids
unique, style scoped, text escaped), and ``plot.svg`` is drawn once and read back after."""

from __future__ import annotations

import re
import xml.dom.minidom
from pathlib import Path

import numpy as np
import pytest

from fastlims.intake.storage import open_storage
from fastlims.procedures.outcomes import CURRENT, STEP_COUNT, TIME, VOLTAGE
from fastlims.runs import plots, results


def series(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(n, dtype=float), rng.normal(0.0, 1.0, n)


@pytest.mark.parametrize("n", [2001, 10_000, 1_234_567])
def test_downsampling_keeps_every_bucket_s_extremes_in_time_order(n: int) -> None:
    t, y = series(n)
    spikes = np.random.default_rng(2).choice(n, 7, replace=False)
    y[spikes[:4]] = 50.0
    y[spikes[4:]] = -50.0
    tx, yx = plots.minmax_downsample(t, y, 2000)
    assert len(tx) <= 2000 and len(tx) == len(yx)
    assert np.all(np.diff(tx) > 0), "in time order, each sample once"
    assert set(tx[yx == 50.0].tolist()) == set(t[spikes[:4]].tolist())
    assert set(tx[yx == -50.0].tolist()) == set(t[spikes[4:]].tolist())
    assert yx.max() == y.max() and yx.min() == y.min()


def test_a_short_series_is_kept_whole_and_a_nan_bucket_is_a_gap() -> None:
    t, y = series(500)
    tx, yx = plots.minmax_downsample(t, y, 2000)
    assert tx is t and yx is y
    t, y = series(10_000)
    y[:100] = np.nan  # the first bucket (10 000 / 1000 buckets = 10 samples) and nine more
    _, yx = plots.minmax_downsample(t, y, 2000)
    assert np.isnan(yx[0]) and np.isfinite(yx[-1])


def cell_columns(n: int = 7200) -> dict[str, np.ndarray]:
    t = np.arange(n, dtype=float)
    step = (t >= 3600).astype(float) + (t >= 5400)
    current = np.select([step == 0, step == 1], [-5.0, 0.0], 2.5)
    voltage = 4.1 - 0.8 * np.minimum(t, 3600) / 3600 + 0.05 * current
    return {TIME: t, VOLTAGE: voltage, CURRENT: current, STEP_COUNT: step}


def test_the_svg_is_an_inline_element_with_labelled_axes_and_step_boundaries() -> None:
    steps = [
        {"start_time_s": 0.0, "type": "cc", "label": "<script>alert(1)</script>"},
        {"start_time_s": 3600.0, "type": "rest", "label": "$not math"},
        {"start_time_s": 5400.0, "type": "cc", "label": None},
    ]
    svg = plots.draw_svg(cell_columns(), title="run-001 on virtual-1", steps=steps, end_cause="safety_limit")
    document = xml.dom.minidom.parseString(svg)  # well-formed: it goes into the page as is
    assert svg.startswith(f'<svg class="{plots.SVG_CLASS}" width="100%"')
    text = " ".join(node.firstChild.data for node in document.getElementsByTagName("text") if node.firstChild)
    for label in ("Voltage / V", "Current / A (positive = charge)", "Test time / min", "run-001 on virtual-1"):
        assert label in text
    assert "step boundary" in text and "ended: safety_limit" in text
    assert "<script" not in svg and "&lt;script&gt;" in svg, "a procedure's label is text"
    assert "$not math" in text
    ids = re.findall(r'\sid="([^"]*)"', svg)
    referenced = set(re.findall(r'(?:url\(#|href="#)([^")]+)', svg))
    assert ids and set(ids) == referenced, "only the ids the plot refers to"
    assert "figure_1" not in svg and "<metadata>" not in svg
    assert f".{plots.SVG_CLASS} *{{" in svg, "its style applies to itself, not the page"
    other = plots.draw_svg(cell_columns(), title="run-002")
    assert not set(ids) & set(re.findall(r'\sid="([^"]*)"', other)), "two plots on one page share no id"
    assert "ended:" not in other


def test_the_first_step_s_start_after_the_opening_sample_is_no_boundary() -> None:
    columns = cell_columns(600)
    columns[STEP_COUNT] = np.r_[0.0, np.ones(599)]
    columns["Step ID"] = np.r_[-1.0, np.zeros(599)]
    assert "boundary" not in plots.draw_svg(columns)
    columns[STEP_COUNT][300:] = 2
    columns["Step ID"][300:] = 1
    assert "step boundary" in plots.draw_svg(columns)


def test_many_steps_mark_cycles_instead() -> None:
    n = 40_000
    t = np.arange(n, dtype=float)
    columns = {
        TIME: t,
        VOLTAGE: 3.7 + 0.1 * np.sin(t / 50),
        CURRENT: np.where((t // 50) % 2 == 0, -1.0, 1.0),
        STEP_COUNT: t // 50,  # 800 steps
        "Cycle Count / 1": t // 1000,  # 40 cycles
    }
    assert "cycle boundary" in plots.draw_svg(columns)
    del columns["Cycle Count / 1"]
    assert "boundary" not in plots.draw_svg(columns)


def test_the_plot_is_drawn_once_and_kept_beside_the_results(tmp_path: Path) -> None:
    storage = open_storage(str(tmp_path / "storage"))
    folder = "sim/simulation-results/u.run-001"
    columns = {"time": np.arange(7200, dtype=float), **cell_columns()}
    results.write_parquet(tmp_path / "r.parquet", columns, {}, run_id="u.run-001")
    assert plots.run_plot(storage=storage, folder=folder) is None, "no results, no plot"
    storage.put(f"{folder}/results.parquet", (tmp_path / "r.parquet").read_bytes())
    drawn = plots.run_plot(storage=storage, folder=folder, title="run-001")
    assert drawn is not None and "Voltage / V" in drawn
    stored = storage.get(f"{folder}/{plots.PLOT_FILE}").decode()
    assert stored.startswith(f"<!-- {plots.FORMAT} -->") and stored.endswith(drawn)
    storage.delete(f"{folder}/results.parquet")
    assert plots.run_plot(storage=storage, folder=folder) == drawn, "read back, not drawn again"
    storage.put(f"{folder}/{plots.PLOT_FILE}", b"<svg>an older plot</svg>")
    storage.put(f"{folder}/results.parquet", (tmp_path / "r.parquet").read_bytes())
    assert "Voltage / V" in (plots.run_plot(storage=storage, folder=folder) or ""), "another version: drawn again"
