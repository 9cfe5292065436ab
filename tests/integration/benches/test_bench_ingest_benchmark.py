"""``bench/benches.py`` in a tiny configuration (5 benches for 3 s on the embedded broker), run as
a user runs it, so the benchmark cannot rot: its JSON says every sample was stored exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_ingest_benchmark_stores_every_sample_once(tmp_path: Path) -> None:
    out = tmp_path / "benches.json"
    finished = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "benches.py"), "--ladder", "5", "--seconds", "3",
         "--brokers", "embedded", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=os.environ.copy(), cwd=ROOT,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    result = json.loads(out.read_text())
    embedded = result["brokers"]["embedded"]
    [step] = embedded["steps"]
    assert step["benches"] == 5
    assert step["records_expected"] == 5 * 30 == step["records_stored"]
    assert (step["records_missing"], step["records_duplicated"], step["runs_incomplete"]) == (0, 0, 0)
    assert step["zero_loss"] is True
    generated = step["generator"]
    assert generated["batches_published"] == generated["batches_acknowledged_by_broker"] == step["batches_expected"]
    assert 0 < step["latency_s"]["p50"] <= step["latency_s"]["p99"] < 1.0
    assert embedded["gateway"]["refused"] == 0
    assert embedded["max_benches_zero_loss_p99_below_1s"] == 5
    assert result["machine"]["load_average_1_5_15_min_before"] is not None
