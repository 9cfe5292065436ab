"""What confinement works on this host, found by trying it (at start-up of a process that runs
virtual benches, once per process): a child confines itself in each mode, strongest first, and
then checks that it cannot read a file left outside its view, cannot connect to a TCP port this
process listens on, can write its scratch folder and can still import the simulation runtime.

The first mode whose child passes every check is the one used (``auto``); a mode that fails says
why (``reasons``), and the start-up refusal and the pages quote it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from fastlims.benches.sandbox import landlock
from fastlims.benches.sandbox.confine import runtime_paths, world_reachable
from fastlims.benches.sandbox.policy import NOBODY, Policy

_CHECK = """
import json, os, socket, sys
sys.path[:0] = json.loads(sys.argv[1])
from fastlims.benches.sandbox.confine import confine
from fastlims.benches.sandbox.policy import Policy
policy = Policy.from_json(sys.argv[2])
report = confine(policy)
problems = {}
try:
    open(sys.argv[4]).read()
    problems["files"] = "it read a file outside its view"
except OSError:
    pass
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[3])), timeout=2).close()
    problems["network"] = "it connected to a TCP port on this host"
except OSError:
    pass
try:
    with open(os.path.join(policy.scratch, "probe"), "w") as handle:
        handle.write("x")
except OSError as exc:
    problems["scratch"] = f"it cannot write its scratch folder: {exc}"
try:
    import numpy, fmpy  # noqa: F401
except Exception as exc:
    problems["runtime"] = f"it cannot import the simulation runtime: {exc!r}"
print(json.dumps({"report": report, "problems": problems}))
"""


@dataclass(frozen=True)
class Detection:
    """The mode that works (``none`` if no confinement does), and why the stronger ones failed."""

    mode: str
    reasons: dict[str, str] = field(default_factory=dict)
    report: dict[str, object] = field(default_factory=dict)

    @property
    def sandboxed(self) -> bool:
        return self.mode != "none"

    def describe(self) -> str:
        if self.sandboxed:
            return f"simulations run in the {self.mode} sandbox"
        why = (
            "; ".join(f"{mode}: {reason}" for mode, reason in self.reasons.items())
            or "FASTLIMS_VIRTUAL_BENCH_SANDBOX=none"
        )
        return f"simulations run unsandboxed ({why})"


def try_mode(mode: str, uid: int = NOBODY) -> tuple[str | None, dict[str, object]]:
    """(None, the child's report) when ``mode`` confines a child here; else (why not, {})."""
    if mode == "landlock" and landlock.abi() < 4:
        return f"Landlock ABI {landlock.abi()} (4, Linux 6.7, is needed to refuse TCP)", {}
    folder = Path(tempfile.mkdtemp(prefix="fastlims-probe-"))
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        scratch, root, canary = folder / "scratch", folder / "root", folder / "canary"
        scratch.mkdir()
        root.mkdir()
        canary.write_text("outside the sandbox")
        drop = os.geteuid() == 0 and (mode == "namespaces" or all(world_reachable(p) for p in runtime_paths()))
        if drop:
            os.chmod(folder, 0o755)  # noqa: S103 - the child's uid must enter; nothing secret inside
            os.chmod(canary, 0o644)
            for path in (scratch, root):
                os.chown(path, uid, uid)
        policy = Policy(mode=mode, read=(), scratch=str(scratch), root=str(root), uid=uid if drop else None,
                        gid=uid if drop else None)  # fmt: skip
        import_path = [p for p in sys.path if p and os.path.isabs(p)]
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and check
                [sys.executable, "-I", "-c", _CHECK, json.dumps(import_path), policy.to_json(),
                 str(listener.getsockname()[1]), str(canary)],
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": str(scratch), "HOME": str(scratch)},
                cwd=scratch, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return "the probe child did not finish within 120 s", {}
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            return error[:500], {}
        found = json.loads(lines[-1])
        if found["problems"]:
            return "; ".join(found["problems"].values()), {}
        return None, dict(found["report"])
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)


_FOUND: dict[tuple[str, int], Detection] = {}
_LOCK = threading.Lock()


def detect(requested: str = "auto", uid: int = NOBODY) -> Detection:
    """The strongest mode that works (``auto``), or whether ``requested`` does (once per process;
    a second caller waits for the first one's probe)."""
    key = (requested, uid)
    with _LOCK:
        if key not in _FOUND:
            _FOUND[key] = _detect(requested, uid)
        return _FOUND[key]


def detect_in_background(requested: str = "auto", uid: int = NOBODY) -> None:
    """Start :func:`detect` in a thread, so that the probe runs while the rest of a process starts."""
    threading.Thread(target=detect, args=(requested, uid), name="sandbox-probe", daemon=True).start()


def detected(requested: str = "auto", uid: int = NOBODY) -> Detection | None:
    """What :func:`detect` found in this process, without probing (None: not probed yet)."""
    return Detection("none") if requested == "none" else _FOUND.get((requested, uid))


def _detect(requested: str, uid: int) -> Detection:
    if requested == "none":
        return Detection("none")
    reasons: dict[str, str] = {}
    for mode in ("namespaces", "landlock") if requested == "auto" else (requested,):
        reason, report = try_mode(mode, uid)
        if reason is None:
            return Detection(mode, reasons, report)
        reasons[mode] = reason
    return Detection("none", reasons)
