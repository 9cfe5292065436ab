"""The request page's results: the outcomes table (a row per run, a column for each factor and
each outcome some run has) and each finished run's voltage/current plot, with the reason of a
run that did not complete."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fastlims.intake.service import Intake
from fastlims.requests.models import TestRequest
from fastlims.runs import plots, twins
from fastlims.runs import queries as runs
from fastlims.runs.schemas import RunOut, Verdict

log = logging.getLogger(__name__)

FINISHED = ("completed", "failed")


def _fixed(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}"


def _percent(value: float) -> str:
    return f"{value * 100:.2f} %"


def _milli(value: float) -> str:
    return f"{value * 1000:.3g}"


# (outcome key, column title, format): in the order a battery engineer reads them.
OUTCOME_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("discharge_capacity_Ah", "Discharge capacity / Ah", _fixed(4)),
    ("charge_capacity_Ah", "Charge capacity / Ah", _fixed(4)),
    ("discharge_energy_Wh", "Discharge energy / Wh", _fixed(3)),
    ("coulombic_efficiency", "Coulombic efficiency", _percent),
    ("dcir_ohm", "DCIR / mΩ", _milli),
    ("capacity_retention", "Capacity retention", _percent),
    ("min_voltage_V", "Min voltage / V", _fixed(4)),
    ("max_voltage_V", "Max voltage / V", _fixed(4)),
    ("max_temperature_C", "Max temperature / °C", _fixed(1)),
)


@dataclass(frozen=True)
class RunView:
    """One run on the page: its API answer, its short name, table cells and plot."""

    run: RunOut
    name: str
    factors: list[str]
    outcomes: list[str]
    verdict: Verdict | None
    failed: bool
    plot: str | None = None
    plot_problem: str | None = None


@dataclass(frozen=True)
class ResultsView:
    factor_names: list[str]
    outcome_titles: list[str]
    with_verdict: bool
    runs: list[RunView] = field(default_factory=list)

    @property
    def with_twins(self) -> bool:
        """Some run is hybrid: the table gets the twin residual column."""
        return any(v.run.comparison is not None or v.run.twin_of is not None for v in self.runs)

    @property
    def twin_alerts(self) -> list[str]:
        """The alerts of hybrid runs whose residual exceeds the threshold, in words."""
        return [
            twins.alert_text({**v.run.comparison.model_dump(), "run_id": v.run.run_id})
            for v in self.runs
            if v.run.comparison is not None and v.run.comparison.alert
        ]


def _number(value: float | None, fmt: Callable[[float], str]) -> str:
    return "" if value is None else fmt(value)


def results_of(*, session: Session, intake: Intake, request: TestRequest, zone: ZoneInfo) -> ResultsView | None:
    """The page's results section; None before the request has runs."""
    rows = runs.runs_of(session=session, request=request)
    if not rows:
        return None
    answers = [runs.run_out(row, zone) for row in rows]
    factor_names = sorted({name for run in answers for name in run.factors})
    measured = [run.outcomes.model_dump() if run.outcomes else {} for run in answers]
    columns = [c for c in OUTCOME_COLUMNS if any(m.get(c[0]) is not None for m in measured)]
    views = []
    for row, run, values in zip(rows, answers, measured, strict=True):
        failed = run.state == "failed" or run.end_cause not in (None, "procedure_complete")
        plot, problem = _plot(intake, request, run, row.design_run_id) if run.state in FINISHED else (None, None)
        views.append(
            RunView(
                run=run,
                name=row.design_run_id,
                factors=[_number(run.factors.get(name), lambda v: f"{v:.4g}") for name in factor_names],
                outcomes=[_number(values.get(key), fmt) for key, _, fmt in columns],
                verdict=run.outcomes.verdict if run.outcomes else None,
                failed=failed,
                plot=plot,
                plot_problem=problem,
            )
        )
    return ResultsView(
        factor_names=factor_names,
        outcome_titles=[title for _, title, _ in columns],
        with_verdict=any(view.verdict is not None for view in views),
        runs=views,
    )


def _plot(intake: Intake, request: TestRequest, run: RunOut, name: str) -> tuple[str | None, str | None]:
    """The run's plot (drawn once, then read from storage), or why there is none."""
    folder = runs.results_folder(request, run.run_id)
    if folder is None:
        return None, "the run has no results"
    summary = runs.summary_of(storage=intake.storage, request=request, run_id=run.run_id)
    try:
        svg = plots.run_plot(
            storage=intake.storage, folder=folder, title=f"{name} on {run.bench}",
            steps=_steps(summary), end_cause=run.end_cause,
        )  # fmt: skip
    except (OSError, ValueError, KeyError) as exc:  # a damaged results file: the page still shows
        log.warning("cannot plot a run", extra={"run_id": run.run_id, "problem": str(exc)})
        return None, f"the results cannot be plotted: {exc}"
    return (svg, None) if svg is not None else (None, "the run recorded no samples")


def _steps(summary: dict[str, Any]) -> list[dict[str, Any]]:
    steps = summary.get("steps")
    return [s for s in steps if isinstance(s, dict) and "start_time_s" in s] if isinstance(steps, list) else []
