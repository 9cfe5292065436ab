"""What every benchmark records about the machine it ran on (STYLE.md, Benchmarks)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any


def version(distribution: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (the machine is shared: read timings against them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info(*distributions: str, **extra: Any) -> dict[str, Any]:
    """Cores, Python, platform, load average and the versions of ``distributions``; ``extra``
    adds anything else the benchmark knows (e.g. a server binary's version)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "load_average_1_5_15_min_before": load_average(),
        "libraries": {name: version(name) for name in distributions},
        **extra,
    }
