"""Scheduling of test runs on benches: a pure model, solvers behind one ``solve`` call, an
independent checker and exports (schedule.json, Gantt chart, per-request summary).

Data in, data out: nothing here reads settings, files or clocks beyond measuring its own
solve time.
"""

from fastlims.scheduling.models import (
    Assignment,
    Bench,
    BenchKind,
    BenchRatings,
    Calendar,
    FrozenAssignment,
    InfeasibleError,
    NoScheduleFoundError,
    Problem,
    Run,
    RunNeeds,
    Schedule,
    SolverUnavailableError,
    datetime_at,
    minutes_from,
)
from fastlims.scheduling.solver import SolverName, freeze_started, solve

__all__ = [
    "Assignment",
    "Bench",
    "BenchKind",
    "BenchRatings",
    "Calendar",
    "FrozenAssignment",
    "InfeasibleError",
    "NoScheduleFoundError",
    "Problem",
    "Run",
    "RunNeeds",
    "Schedule",
    "SolverName",
    "SolverUnavailableError",
    "datetime_at",
    "freeze_started",
    "minutes_from",
    "solve",
]
