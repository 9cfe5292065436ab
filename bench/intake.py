"""Benchmark of the model intake: SFTP upload throughput of a 50 MB FMU set with the real OpenSSH
client, and the time from the last file's close to ModelReady.

Run: ``PYTHONPATH=src:. python bench/intake.py`` (writes ``bench/results/intake.json``).

Each round creates a request waiting for models, uploads battery_cell.fmu (padded with an
incompressible 48 MB resource, as a real FMU with tables would be), cycler.fmu and
inter_connection.json in one ``sftp`` session into ``/<test_UUID>/``, and records:

* the wall time of the ``sftp`` process (connection and key exchange included) → MB/s;
* the moment the server committed the last file (its clean close, instrumented here) and the
  moment the ModelReady hook ran (after the database commit) → close-to-ModelReady;
* in the same process, for comparison: copying the same bytes with ``shutil.copyfile`` on the same
  disk (the ceiling for any upload), and the Data Processor alone on a set put straight into the
  pool (validation + moves + status change, without SFTP).

The embedded defaults are measured: SQLite, local-folder storage, the pool watcher on.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.integration.intake.helpers import LoopThread, SftpClient, new_request, request_row, ssh_keygen, wait_for
from tests.services import free_port

from fastlims.bootstrap import build, prepare_database
from fastlims.config import Settings
from fastlims.intake import partners
from fastlims.intake.events import UploadEvent
from fastlims.intake.service import IntakeService
from fastlims.peers.digital_twin import interconnection as reference_interconnection
from fastlims.peers.fmus import build_fmu

ROUNDS = 5
SET_BYTES = 50 * 1000 * 1000
OUT = Path(__file__).resolve().parent / "results" / "intake.json"


def padded_fmu(source: Path, target: Path, extra: int) -> None:
    """The FMU plus an incompressible resource of ``extra`` bytes (stored, as table data often is)."""
    import zipfile

    shutil.copyfile(source, target)
    with zipfile.ZipFile(target, "a") as archive:
        info = zipfile.ZipInfo("resources/tables.bin", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        archive.writestr(info, os.urandom(extra))


def summary(values: list[float], unit: str) -> dict[str, Any]:
    return {
        "unit": unit,
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "values": [round(v, 4) for v in values],
    }


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="fastlims-bench-intake-"))
    try:
        result = run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["figures"], indent=2))


def run(work: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    fmus = work / "fmus"
    battery = build_fmu("battery_cell", "2.0", fmus, name="battery_plain")
    cycler = build_fmu("cycler", "2.0", fmus, name="cycler")
    upload_dir = work / "upload"
    upload_dir.mkdir()
    (upload_dir / "cycler.fmu").write_bytes(cycler.read_bytes())
    (upload_dir / "inter_connection.json").write_bytes(
        json.dumps(reference_interconnection("battery_cell", "cycler")).encode()
    )
    rest = sum(p.stat().st_size for p in upload_dir.iterdir()) + battery.stat().st_size
    padded_fmu(battery, upload_dir / "battery_cell.fmu", SET_BYTES - rest - 200)
    set_bytes = sum(p.stat().st_size for p in upload_dir.iterdir())

    settings = Settings(
        data_dir=work / "data",
        database_url=f"sqlite:///{work / 'data' / 'fastlims.db'}",
        sftp_port=free_port(),
        intake_max_file_bytes=200_000_000,
        log_level="WARNING",
    )
    system = build(settings)
    prepare_database(system)
    key = ssh_keygen(work / "partner")
    with system.database.transaction() as session:
        partners.create(session=session, name="dt", key_text=key.with_suffix(".pub").read_text())
    service = next(s for s in system.services if isinstance(s, IntakeService))
    loop = LoopThread()
    loop.run(service.start())
    intake = service.intake

    ready_at: dict[str, float] = {}
    intake.on_model_ready(lambda notice: ready_at.setdefault(notice.test_uuid, time.perf_counter()))
    closes: list[tuple[str, float]] = []
    sftp_server = service.sftp
    original_committed = sftp_server.committed

    def timed_committed(upload: Any, replaced: int) -> None:
        closes.append((upload.relative, time.perf_counter()))
        original_committed(upload, replaced)

    sftp_server.committed = timed_committed
    client = SftpClient(shutil.which("sftp") or "sftp", sftp_server.port)

    upload_s: list[float] = []
    close_to_ready_s: list[float] = []
    copy_s: list[float] = []
    processor_s: list[float] = []
    try:
        for _ in range(ROUNDS):
            request = new_request(system)
            u = request.test_uuid
            closes.clear()
            batch = f"mkdir {u}\n" + "".join(f"put {upload_dir / n} {u}/\n" for n in sorted(os.listdir(upload_dir)))
            started = time.perf_counter()
            answer = client.run("dt", key, batch)
            upload_s.append(time.perf_counter() - started)
            if answer.returncode != 0:
                raise RuntimeError(f"sftp failed: {answer.stderr}")
            wait_for(lambda u=u: u in ready_at, timeout_s=60, what="ModelReady")
            last_close = max(t for _, t in closes)
            close_to_ready_s.append(ready_at[u] - last_close)
            assert request_row(system, u)["status"] == "ModelReady"

            # Same bytes, same disk: a plain file copy.
            target = work / "copy"
            target.mkdir(exist_ok=True)
            started = time.perf_counter()
            for name in os.listdir(upload_dir):
                shutil.copyfile(upload_dir / name, target / name)
            copy_s.append(time.perf_counter() - started)
            shutil.rmtree(target)

            # The Data Processor alone: the set put straight into the pool, one event.
            other = new_request(system)
            for name in os.listdir(upload_dir):
                intake.storage.put(f"pool/{other.test_uuid}/{name}", upload_dir / name)
            started = time.perf_counter()
            outcome = intake.handler.handle_sync(
                UploadEvent(path=f"pool/{other.test_uuid}/inter_connection.json", source="bench")
            )
            processor_s.append(time.perf_counter() - started)
            assert outcome.outcome == "accepted", outcome
    finally:
        loop.run(service.stop())
        loop.close()
        system.close()

    megabytes = set_bytes / 1e6
    openssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {
        "benchmark": "intake",
        "machine": {
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "openssh": openssh,
            "libraries": {p: metadata.version(p) for p in ("asyncssh", "obstore", "fmpy", "watchfiles", "sqlalchemy")},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "inputs": {
            "rounds": ROUNDS,
            "set_bytes": set_bytes,
            "files": {n: (upload_dir / n).stat().st_size for n in sorted(os.listdir(upload_dir))}
            if upload_dir.exists()
            else {},
            "database": "SQLite (embedded default)",
            "storage": "local folder (embedded default); pool watcher on",
            "client": "OpenSSH sftp, one session: mkdir + 3 puts",
        },
        "figures": {
            "sftp_upload_seconds": summary(upload_s, "s"),
            "sftp_throughput": summary([megabytes / s for s in upload_s], "MB/s"),
            "close_to_model_ready_seconds": summary(close_to_ready_s, "s"),
            "comparison_local_copy_throughput": summary([megabytes / s for s in copy_s], "MB/s"),
            "comparison_processor_alone_seconds": summary(processor_s, "s"),
            "ratio_sftp_to_local_copy": round(
                statistics.median([megabytes / s for s in upload_s])
                / statistics.median([megabytes / s for s in copy_s]),
                3,
            ),
        },
        "notes": (
            "close_to_model_ready runs from the server's commit (rename) of the last file to the ModelReady hook: "
            "event dispatch, zip CRC check of every entry (50 MB read), FMPy validation, moves, status change and "
            "commit. The processor-alone figure is the same work without SFTP, started by one event."
        ),
    }


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
