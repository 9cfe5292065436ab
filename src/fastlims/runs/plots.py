"""A run's voltage and current against test time, as an SVG for the request page.

Drawn once per run from its results file and kept beside it (``plot.svg``): a page view reads a
few tens of kilobytes instead of decoding a Parquet file of millions of samples. A long series is
cut to about :data:`POINTS` points keeping each bucket's minimum and maximum, so pulses and
peaks survive the cut. Step boundaries are dotted lines; a run that did not complete has its end
marked and named.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fastlims.intake import files
from fastlims.intake.storage import BlobStorage
from fastlims.procedures.outcomes import CURRENT, CYCLE, STEP_COUNT, STEP_ID, TIME, VOLTAGE
from fastlims.runs import results
from fastlims.runs.results import RESULTS_FILE

log = logging.getLogger(__name__)

PLOT_FILE = "plot.svg"
POINTS = 2000
MAX_BOUNDARIES = 200  # more step boundaries than this grey the plot out: cycles are marked instead
MAX_STEP_LABELS = 10
# The cached plot's first line: a plot drawn by another version is drawn again.
FORMAT = "fastlims.run-plot/1"
_MARKER = f"<!-- {FORMAT} -->"
SVG_CLASS = "fastlims-run-plot"
_SVG_START = re.compile(r"<svg\b[^>]*>", re.S)

Array = NDArray[np.float64]


def minmax_downsample(x: Array, y: Array, points: int = POINTS) -> tuple[Array, Array]:
    """``(x, y)`` cut to at most ``points`` samples: per bucket of consecutive samples, its
    minimum and its maximum in their time order (a NaN-only bucket gives a NaN: a gap)."""
    n = len(y)
    if n <= points:
        return x, y
    buckets = max(1, points // 2)
    size = -(-n // buckets)
    pad = buckets * size - n
    finite = np.isfinite(y)
    low = np.concatenate([np.where(finite, y, np.inf), np.full(pad, np.inf)]).reshape(buckets, size)
    high = np.concatenate([np.where(finite, y, -np.inf), np.full(pad, -np.inf)]).reshape(buckets, size)
    offsets = np.arange(buckets) * size
    lows = offsets + np.argmin(low, axis=1)
    highs = offsets + np.argmax(high, axis=1)
    picked = np.stack([np.minimum(lows, highs), np.maximum(lows, highs)], axis=1).ravel()
    picked = np.minimum(picked, n - 1)
    picked = picked[np.concatenate(([True], np.diff(picked) != 0))]  # a flat bucket: once
    return x[picked], y[picked]


def _time_scale(span_s: float) -> tuple[float, str]:
    for limit, divisor, unit in ((180.0, 1.0, "s"), (3 * 3600.0, 60.0, "min"), (3 * 86400.0, 3600.0, "h")):
        if span_s <= limit:
            return divisor, unit
    return 86400.0, "d"


def _boundaries(time: Array, counter: Array | None, step_id: Array | None = None) -> Array:
    """The times at which ``counter`` (step or cycle count) changes, except the first step's
    start after the executors' opening sample (``Step ID`` -1): that edge sits on the start."""
    if counter is None or len(counter) < 2:
        return np.empty(0)
    changed = np.diff(counter) != 0
    if step_id is not None:
        changed &= step_id[:-1] >= 0
    edges: Array = time[1:][changed]
    return edges


def draw_svg(
    columns: Mapping[str, Any],
    *,
    title: str = "",
    steps: Sequence[Mapping[str, Any]] = (),
    end_cause: str | None = None,
) -> str:
    """The plot as SVG text (``<svg ...>`` first, no XML prolog, so it goes inline in a page).

    ``columns``: Battery Data Format columns (``Test Time / s``, ``Voltage / V``,
    ``Current / A``; ``Step Count / 1``, ``Step ID`` and ``Cycle Count / 1`` for the
    boundaries); ``steps``:
    the per-step summaries, whose types label the steps when there are few.
    """
    import matplotlib as mpl
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    # Text stays text (selectable, searchable, the page's font); set, never restored, so that two
    # plots drawn at once in two threads cannot undo each other. Nothing else here draws SVG.
    mpl.rcParams["svg.fonttype"] = "none"
    time = np.asarray(columns[TIME], dtype=np.float64)
    voltage = np.asarray(columns[VOLTAGE], dtype=np.float64)
    current = np.asarray(columns[CURRENT], dtype=np.float64)
    span = float(time[-1] - time[0]) if len(time) > 1 else 0.0
    divisor, unit = _time_scale(span)
    scaled = time / divisor

    figure = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasSVG(figure)
    volts = figure.add_subplot(1, 1, 1)
    amps = volts.twinx()
    volts.set_zorder(amps.get_zorder() + 1)  # the voltage over the current, on a see-through face
    volts.patch.set_visible(False)
    volts.plot(*minmax_downsample(scaled, voltage), color="#1f5fa8", linewidth=1.1)
    amps.plot(*minmax_downsample(scaled, current), color="#d9711c", linewidth=1.0)
    volts.set_xlabel(f"Test time / {unit}")
    volts.set_ylabel("Voltage / V", color="#1f5fa8")
    amps.set_ylabel("Current / A (positive = charge)", color="#d9711c")
    volts.tick_params(axis="y", colors="#1f5fa8")
    amps.tick_params(axis="y", colors="#d9711c")
    volts.grid(True, color="#e3e3e3", linewidth=0.6)
    if len(scaled):
        volts.set_xlim(float(scaled[0]), float(scaled[-1]) if span > 0 else float(scaled[0]) + 1.0)

    counter, ids = columns.get(STEP_COUNT), columns.get(STEP_ID)
    edges = _boundaries(
        time,
        None if counter is None else np.asarray(counter, dtype=np.float64),
        None if ids is None else np.asarray(ids, dtype=np.float64),
    )
    what = "step boundary"
    if len(edges) > MAX_BOUNDARIES:
        cycles = columns.get(CYCLE)
        edges = _boundaries(time, None if cycles is None else np.asarray(cycles, dtype=np.float64))
        what = "cycle boundary"
        if len(edges) > MAX_BOUNDARIES:
            edges, what = np.empty(0), ""
    for edge in edges / divisor:
        volts.axvline(float(edge), color="#7a7a7a", linestyle=":", linewidth=0.8)
    if 0 < len(steps) <= MAX_STEP_LABELS:
        top = volts.get_xaxis_transform()
        for step in steps:
            volts.text(
                float(step["start_time_s"]) / divisor, 1.01, _plain(str(step.get("label") or step["type"])),
                transform=top, fontsize=8, color="#555555", ha="left", va="bottom",
            )  # fmt: skip
    handles = [
        Line2D([], [], color="#1f5fa8", label="Voltage"),
        Line2D([], [], color="#d9711c", label="Current"),
    ]
    if len(edges):
        handles.append(Line2D([], [], color="#7a7a7a", linestyle=":", label=what))
    if end_cause and end_cause != "procedure_complete" and len(scaled):
        volts.axvline(float(scaled[-1]), color="#c62828", linestyle="--", linewidth=1.4)
        handles.append(Line2D([], [], color="#c62828", linestyle="--", label=f"ended: {end_cause}"))
    figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    if title:
        figure.suptitle(_plain(title, 120), fontsize=10, x=0.01, ha="left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _inline(buffer.getvalue().decode("utf-8"))


def _plain(text: str, limit: int = 24) -> str:
    """A procedure's own words as plain text: ``$`` would start matplotlib's mathtext."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _inline(svg: str) -> str:
    """matplotlib's document as an element for a page that holds several: no prolog or metadata,
    scales to its container, its style scoped to itself, and only the ids it refers to (those
    are random per drawing; matplotlib's others, ``figure_1``, ``axes_1``, repeat in each plot)."""
    start = _SVG_START.search(svg)
    if start is None:  # pragma: no cover - matplotlib always writes one
        raise ValueError("matplotlib wrote no <svg> element")
    tag = re.sub(r'\s(width|height)="[^"]*"', "", start.group(0))
    own = f'<svg class="{SVG_CLASS}" width="100%" preserveAspectRatio="xMinYMin meet" role="img"'
    tag = tag.replace("<svg", own, 1)
    body = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[start.end() :], flags=re.S)
    body = body.replace('<style type="text/css">*{', f'<style type="text/css">.{SVG_CLASS} *{{', 1)
    used = set(re.findall(r'(?:url\(#|href="#)([^")]+)', body))
    body = re.sub(r'\sid="([^"]*)"', lambda m: m.group(0) if m.group(1) in used else "", body)
    return tag + body


def run_plot(
    *,
    storage: BlobStorage,
    folder: str,
    title: str = "",
    steps: Sequence[Mapping[str, Any]] = (),
    end_cause: str | None = None,
) -> str | None:
    """The plot of the run whose files are in ``folder`` (``simulation-results/<run_id>``): the
    stored ``plot.svg`` when there is one of this version, else drawn from ``results.parquet``
    and stored. None when the run has no results, or no samples to draw."""
    key = f"{folder}/{PLOT_FILE}"
    try:
        cached = storage.get(key).decode("utf-8", errors="replace")
    except FileNotFoundError:
        cached = ""
    if cached.startswith(_MARKER) and "<script" not in cached.lower():
        return cached[len(_MARKER) :].lstrip("\n")
    try:
        data = storage.get(f"{folder}/{RESULTS_FILE}")
    except FileNotFoundError:
        return None
    stored = results.read_parquet(data, columns=[TIME, VOLTAGE, CURRENT, STEP_COUNT, STEP_ID, CYCLE])
    if any(name not in stored.columns for name in (TIME, VOLTAGE, CURRENT)) or not len(stored.columns[TIME]):
        log.info("no voltage and current to plot", extra={"folder": folder})
        return None
    svg = draw_svg(stored.columns, title=title, steps=steps, end_cause=end_cause)
    files.put_text(storage, key, f"{_MARKER}\n{svg}")
    return svg
