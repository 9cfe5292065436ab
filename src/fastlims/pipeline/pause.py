"""Test-only pause points, so a crash test can kill the process at an exact place in a step.

``FASTLIMS_PIPELINE_TEST_PAUSE`` lists points as ``step:phase`` (comma-separated, ``*`` for all):
steps ``processor``, ``doe``, ``schedule``, ``dispatch``; phases ``before`` (no effect yet),
``middle`` (some effects done) and ``after`` (every effect done, the step's result not yet
recorded by DBOS). At a listed point the step writes ``<dir>/<test_UUID>/<step>.<phase>.reached``
and blocks until ``<dir>/<test_UUID>/<step>.<phase>.go`` exists, a file the test creates (before,
to let a request pass the point, or never, to hold it there for SIGKILL).

Unset (production) it costs one set lookup per point.
"""

from __future__ import annotations

import threading
from pathlib import Path

STEPS = ("processor", "doe", "schedule", "dispatch")
PHASES = ("before", "middle", "after")
ALL_POINTS = tuple(f"{step}:{phase}" for step in STEPS for phase in PHASES)


def parse_points(spec: str | None) -> frozenset[str]:
    """The points named by the setting; ``ValueError`` for an unknown one."""
    if not spec:
        return frozenset()
    points = {p.strip() for p in spec.split(",") if p.strip()}
    if "*" in points:
        return frozenset(ALL_POINTS)
    unknown = sorted(points - set(ALL_POINTS))
    if unknown:
        raise ValueError(
            f"FASTLIMS_PIPELINE_TEST_PAUSE: unknown point(s) {', '.join(unknown)}; use step:phase from {ALL_POINTS}"
        )
    return frozenset(points)


class PausePoints:
    def __init__(self, spec: str | None, folder: Path | None, poll_s: float = 0.02) -> None:
        self.points = parse_points(spec)
        if self.points and folder is None:
            raise ValueError("FASTLIMS_PIPELINE_TEST_PAUSE needs FASTLIMS_PIPELINE_TEST_PAUSE_DIR")
        self.folder = Path(folder) if folder is not None else None
        self.poll_s = poll_s
        self._stop = threading.Event()

    def __bool__(self) -> bool:
        return bool(self.points)

    def wants(self, step: str, phase: str) -> bool:
        """Whether ``step:phase`` is a configured pause point (never in production)."""
        return f"{step}:{phase}" in self.points

    def reached(self, test_uuid: str, step: str, phase: str) -> None:
        """Block at ``step:phase`` until the test releases it (no-op unless configured)."""
        point = f"{step}:{phase}"
        if point not in self.points:
            return
        assert self.folder is not None
        here = self.folder / test_uuid
        here.mkdir(parents=True, exist_ok=True)
        (here / f"{step}.{phase}.reached").touch()
        release = here / f"{step}.{phase}.go"
        while not release.exists():
            if self._stop.wait(self.poll_s):  # only a test waits here; SIGKILL ends it
                return

    def release_all(self) -> None:
        """Let every waiting step go (a clean shutdown of a test process)."""
        self._stop.set()
