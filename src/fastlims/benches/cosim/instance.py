"""One FMU instance of a run: FMPy makes the life-cycle calls (instantiate, initialize, terminate,
free); the hot loop calls the same library through raw function pointers of a ``PyDLL`` (no
argument conversion, no GIL release per call). What the FMU logs is captured for the reasons.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections import deque
from collections.abc import Sequence
from typing import Any

from fmpy import calloc, free, freeLibrary
from fmpy.fmi2 import (
    FMU2Slave,
    fmi2CallbackAllocateMemoryTYPE,
    fmi2CallbackFreeMemoryTYPE,
    fmi2CallbackFunctions,
    fmi2CallbackLoggerTYPE,
)
from fmpy.fmi3 import FMU3Slave

from fastlims.benches.cosim.system import BOOLEAN_TYPES, INTEGER_TYPES, LoadedFmu, Port

STATUS2 = {0: "fmi2OK", 1: "fmi2Warning", 2: "fmi2Discard", 3: "fmi2Error", 4: "fmi2Fatal", 5: "fmi2Pending"}
STATUS3 = {0: "fmi3OK", 1: "fmi3Warning", 2: "fmi3Discard", 3: "fmi3Error", 4: "fmi3Fatal"}
MESSAGES_KEPT = 200
_FMI2_TERMINATED = 3  # fmi2StatusKind fmi2Terminated
# Log categories enabled with logging "errors": those whose name says they carry problems.
_PROBLEM_CATEGORY_WORDS = ("error", "warning", "fatal", "discard")


class Instance:
    """An instance of one FMU of the system (loads its binary when constructed)."""

    def __init__(self, fmu: LoadedFmu, logging: str, log: deque[str]) -> None:
        self.fmu = fmu
        self.name = fmu.name
        self.fmi3 = fmu.fmi_version == "3.0"
        self.problems: deque[str] = deque(maxlen=MESSAGES_KEPT)  # warnings and worse, as logged
        self.problem_count = 0
        self._log = log
        self._logging = logging
        self._library: ctypes.PyDLL | None = None
        self._callbacks: Any = None
        self.instantiated = False
        self.handle = ctypes.c_void_p()
        kwargs = {
            "guid": fmu.token,
            "unzipDirectory": str(fmu.unzip_dir),
            "modelIdentifier": fmu.model_identifier,
            "instanceName": fmu.name,
        }
        self.slave: FMU2Slave | FMU3Slave = FMU3Slave(**kwargs) if self.fmi3 else FMU2Slave(**kwargs)

    def status_name(self, status: int) -> str:
        return (STATUS3 if self.fmi3 else STATUS2).get(status, f"status {status}")

    # -- logging --

    def _record(self, status: int, message: bytes | None) -> None:
        text = (message or b"").decode("utf-8", "replace")
        if status >= 1 or self._logging == "all":
            self._log.append(f"{self.name} [{self.status_name(status)}] {text}")
        if status >= 1:
            self.problems.append(text)
            self.problem_count += 1

    def _log2(self, env: object, instance: bytes, status: int, category: bytes, message: bytes) -> None:
        self._record(status, message)

    def _log3(self, env: object, status: int, category: bytes, message: bytes) -> None:
        self._record(status, message)

    def logged_since(self, mark: int) -> str:
        """The warnings and errors logged since ``problem_count`` was ``mark``, joined."""
        fresh = min(self.problem_count - mark, len(self.problems))
        joined = " | ".join(list(self.problems)[-fresh:]) if fresh > 0 else ""
        return joined if len(joined) <= 1500 else joined[:1500] + " …"

    # -- life cycle --

    def instantiate(self) -> None:
        categories = [c.name for c in self.fmu.model_description.logCategories or []]
        problem_categories = [c for c in categories if any(w in c.lower() for w in _PROBLEM_CATEGORY_WORDS)]
        logging_on = self._logging == "all" or (self._logging == "errors" and bool(problem_categories))
        if self.fmi3:
            self.slave.instantiate(loggingOn=logging_on, logMessage=self._log3)
        else:
            self._callbacks = fmi2CallbackFunctions()
            self._callbacks.logger = fmi2CallbackLoggerTYPE(self._log2)
            self._callbacks.allocateMemory = fmi2CallbackAllocateMemoryTYPE(calloc)
            self._callbacks.freeMemory = fmi2CallbackFreeMemoryTYPE(free)
            from fmpy.logging import addLoggerProxy  # formats the variadic FMI 2 logger's message

            addLoggerProxy(ctypes.byref(self._callbacks))
            self.slave.instantiate(callbacks=self._callbacks, loggingOn=logging_on)
        self.instantiated = True
        if logging_on and self._logging == "errors":
            self.slave.setDebugLogging(True, problem_categories)
        self.handle = ctypes.c_void_p(self.slave.component)
        self._library = ctypes.PyDLL(str(self.fmu.library_path))  # the same library, loaded once more

    def function(self, name: str) -> Any:
        """A raw function pointer of the library: no argtypes, so every argument goes prebuilt."""
        assert self._library is not None, "instantiate first"
        function = self._library[name]
        function.restype = ctypes.c_int
        function.argtypes = None  # type: ignore[assignment]  # ctypes' way to say "no conversion"
        return function

    def set_parameter(self, port: Port, value: float | int | bool) -> None:
        vr, s = [port.value_reference], self.slave
        if port.type in BOOLEAN_TYPES:
            s.setBoolean(vr, [bool(value)])
        elif port.type in INTEGER_TYPES:
            if not self.fmi3:
                s.setInteger(vr, [int(value)])
            else:  # FMI 3 reads and writes enumerations as Int64
                getattr(s, "setInt64" if port.type == "Enumeration" else f"set{port.type}")(vr, [int(value)])
        elif port.type == "Float32":
            s.setFloat32(vr, [float(value)])
        else:
            self.set_reals(vr, [float(value)])

    def get_reals(self, vrs: list[int]) -> list[float]:
        return list(self.slave.getFloat64(vrs) if self.fmi3 else self.slave.getReal(vrs))

    def set_reals(self, vrs: list[int], values: Sequence[float]) -> None:
        if self.fmi3:
            self.slave.setFloat64(vrs, list(values))
        else:
            self.slave.setReal(vrs, list(values))

    def asked_to_terminate(self) -> bool:
        """FMI 2, after a discarded doStep: whether the slave wants the simulation to end."""
        if self.fmi3:
            return False
        with contextlib.suppress(Exception):
            return bool(self.slave.getBooleanStatus(_FMI2_TERMINATED))
        return False

    def close(self) -> None:
        """Terminate and free the instance, unload the library; never raises."""
        if self.instantiated:
            with contextlib.suppress(Exception):  # after an error terminate may be refused: free anyway
                self.slave.terminate()
            with contextlib.suppress(Exception):
                self.slave.freeInstance()  # also releases FMPy's handle on the library
            self.instantiated = False
        else:
            with contextlib.suppress(Exception):
                self.slave.freeLibrary()
        if self._library is not None:
            with contextlib.suppress(Exception):
                freeLibrary(self._library._handle)
            self._library = None
