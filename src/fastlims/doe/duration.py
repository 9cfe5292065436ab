"""How long a run is expected to take, for the scheduler."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fastlims.doe.errors import DoeError


def expected_duration_s(
    profile_timestamps: Sequence[float | int | str] | None,
    nominal_duration_s: float | None,
) -> float:
    """The span of the request's custom profile (last minus first timestamp, in seconds) when it
    has two or more points, else the test's nominal duration.

    The profile wins because it is what the bench will actually play; the nominal duration is
    the catalog's estimate for tests without one. Raises `DoeError` when neither is usable.
    """
    problems: list[str] = []
    if profile_timestamps is not None and len(profile_timestamps) >= 2:
        try:
            times = [float(t) for t in profile_timestamps]
        except (TypeError, ValueError):
            problems.append("custom_profile: timestamps must be numbers of seconds")
        else:
            if not all(math.isfinite(t) for t in times):
                problems.append("custom_profile: timestamps must be finite")
            elif any(b < a for a, b in zip(times, times[1:], strict=False)):
                problems.append("custom_profile: timestamps must not decrease")
            elif times[-1] > times[0]:
                return times[-1] - times[0]
    if not problems and nominal_duration_s is not None:
        if math.isfinite(nominal_duration_s) and nominal_duration_s > 0:
            return float(nominal_duration_s)
        problems.append(f"nominal duration must be a positive number of seconds, got {nominal_duration_s}")
    if not problems:
        problems.append(
            "no run duration: the request has no custom profile of two or more points and "
            "the test name has no nominal duration"
        )
    raise DoeError(problems)
