"""Drive one FMU step by step through FMPy, FMI 2 and FMI 3 alike, and reference physics for checks."""

from __future__ import annotations

import contextlib
import ctypes
import tempfile
from pathlib import Path
from types import TracebackType

import numpy as np
from fmpy import calloc, extract, free, read_model_description
from fmpy.fmi1 import FMICallException
from fmpy.fmi2 import (
    FMU2Slave,
    fmi2CallbackAllocateMemoryTYPE,
    fmi2CallbackFreeMemoryTYPE,
    fmi2CallbackFunctions,
    fmi2CallbackLoggerTYPE,
)
from fmpy.fmi3 import FMU3Slave

__all__ = [
    "FMICallException", "Cosim", "ocv_reference", "OCV_SOC", "OCV_V", "LFP_OCV_PCT", "LFP_OCV_V", "lfp_ocv_reference",
]  # fmt: skip

# The cell's OCV table, copied from battery_cell.c on purpose: the tests check the FMU against
# this independent copy rather than against its own numbers.
OCV_SOC = np.linspace(0.0, 1.0, 21)
OCV_V = np.array(
    [2.500, 3.300, 3.450, 3.510, 3.550, 3.585, 3.615, 3.640, 3.665, 3.690, 3.720,
     3.755, 3.795, 3.840, 3.885, 3.930, 3.975, 4.020, 4.070, 4.130, 4.200]
)  # fmt: skip


def ocv_reference(soc: float) -> float:
    return float(np.interp(soc, OCV_SOC, OCV_V))


# lfp_cell.c's OCV table (V at SOC 0, 5, ..., 100 %), copied on purpose for the same reason.
LFP_OCV_PCT = np.linspace(0.0, 100.0, 21)
LFP_OCV_V = np.array(
    [2.000, 2.900, 3.150, 3.200, 3.220, 3.240, 3.255, 3.265, 3.275, 3.283, 3.290,
     3.296, 3.303, 3.310, 3.325, 3.330, 3.335, 3.340, 3.350, 3.400, 3.600]
)  # fmt: skip


def lfp_ocv_reference(soc_pct: float) -> float:
    """Open-circuit voltage of lfp_cell in V at ``soc_pct`` (%)."""
    return float(np.interp(soc_pct, LFP_OCV_PCT, LFP_OCV_V))


class Cosim:
    """One co-simulation instance: ``initialize(**start)``, ``set``, ``get``, ``step``; a context manager.

    Log messages from the FMU are collected in ``messages`` as (status, category, text).
    """

    def __init__(self, fmu: Path, *, instance_name: str = "instance", guid: str | None = None) -> None:
        self.description = read_model_description(str(fmu))
        self.fmi_version = self.description.fmiVersion
        self.variables = {v.name: v for v in self.description.modelVariables}
        self.messages: list[tuple[int, str, str]] = []
        self.time = 0.0
        self._unzipped = tempfile.TemporaryDirectory(prefix="fmu-test-")
        extract(str(fmu), self._unzipped.name)
        kwargs = {
            "guid": guid if guid is not None else self.description.guid,
            "unzipDirectory": self._unzipped.name,
            "modelIdentifier": self.description.coSimulation.modelIdentifier,
            "instanceName": instance_name,
        }
        self._fmu: FMU2Slave | FMU3Slave = FMU2Slave(**kwargs) if self.fmi_version == "2.0" else FMU3Slave(**kwargs)
        self._instantiated = False

    # -- life cycle --

    def instantiate(self, *, logging_on: bool = False) -> None:
        if self.fmi_version == "2.0":
            self._callbacks = fmi2CallbackFunctions()
            self._callbacks.logger = fmi2CallbackLoggerTYPE(self._log2)
            self._callbacks.allocateMemory = fmi2CallbackAllocateMemoryTYPE(calloc)
            self._callbacks.freeMemory = fmi2CallbackFreeMemoryTYPE(free)
            from fmpy.logging import addLoggerProxy

            addLoggerProxy(ctypes.byref(self._callbacks))
            self._fmu.instantiate(callbacks=self._callbacks, loggingOn=logging_on)
        else:
            self._fmu.instantiate(loggingOn=logging_on, logMessage=self._log3)
        self._instantiated = True

    def enter_initialization(self, start_time: float = 0.0) -> None:
        if self.fmi_version == "2.0":
            self._fmu.setupExperiment(startTime=start_time)
            self._fmu.enterInitializationMode()
        else:
            self._fmu.enterInitializationMode(startTime=start_time)
        self.time = start_time

    def exit_initialization(self) -> None:
        self._fmu.exitInitializationMode()

    def initialize(self, start_time: float = 0.0, **start_values: float) -> Cosim:
        """Instantiate, set start values, and enter and exit initialization mode."""
        if not self._instantiated:
            self.instantiate()
        self.enter_initialization(start_time)
        self.set(**start_values)
        self.exit_initialization()
        return self

    def step(self, h: float) -> None:
        self._fmu.doStep(self.time, h)
        self.time += h

    def run(self, duration: float, h: float, outputs: tuple[str, ...] = ()) -> np.ndarray:
        """Step for ``duration`` with step ``h``; rows of (time, *outputs) after every step."""
        n = round(duration / h)
        rows = np.empty((n, 1 + len(outputs)))
        for i in range(n):
            self.step(h)
            rows[i, 0] = self.time
            if outputs:
                rows[i, 1:] = self.get(*outputs)
        return rows

    def close(self) -> None:
        if self._instantiated:
            with contextlib.suppress(FMICallException):  # failed after an error: free it anyway
                self._fmu.terminate()
            self._fmu.freeInstance()
            self._instantiated = False
        self._unzipped.cleanup()

    def __enter__(self) -> Cosim:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- variables --

    def vr(self, name: str) -> int:
        return int(self.variables[name].valueReference)

    def set(self, **values: float) -> None:
        for name, value in values.items():
            if self.variables[name].type == "Enumeration":
                setter = self._fmu.setInteger if self.fmi_version == "2.0" else self._fmu.setInt64
                setter([self.vr(name)], [int(value)])
            elif self.fmi_version == "2.0":
                self._fmu.setReal([self.vr(name)], [float(value)])
            else:
                self._fmu.setFloat64([self.vr(name)], [float(value)])

    def get(self, *names: str) -> list[float]:
        values: list[float] = []
        for name in names:
            if self.variables[name].type == "Enumeration":
                getter = self._fmu.getInteger if self.fmi_version == "2.0" else self._fmu.getInt64
                values.append(getter([self.vr(name)])[0])
            elif self.fmi_version == "2.0":
                values.append(self._fmu.getReal([self.vr(name)])[0])
            else:
                values.append(self._fmu.getFloat64([self.vr(name)])[0])
        return values

    def value(self, name: str) -> float:
        return self.get(name)[0]

    def get_vr(self, vr: int) -> float:
        getter = self._fmu.getReal if self.fmi_version == "2.0" else self._fmu.getFloat64
        return float(getter([vr])[0])

    # -- FMU state --

    def save_state(self) -> object:
        return self._fmu.getFMUstate() if self.fmi_version == "2.0" else self._fmu.getFMUState()

    def restore_state(self, state: object, time: float) -> None:
        if self.fmi_version == "2.0":
            self._fmu.setFMUstate(state)
        else:
            self._fmu.setFMUState(state)
        self.time = time

    def serialize(self, state: object) -> bytes:
        if self.fmi_version == "2.0":
            return bytes(self._fmu.serializeFMUstate(state))
        return bytes(self._fmu.serializeFMUState(state))

    def deserialize(self, data: bytes) -> object:
        if self.fmi_version == "2.0":
            return self._fmu.deSerializeFMUstate(data)
        return self._fmu.deserializeFMUState(data)

    def free_state(self, state: object) -> None:
        if self.fmi_version == "2.0":
            self._fmu.freeFMUstate(state)
        else:
            self._fmu.freeFMUState(state)

    # -- logging --

    def _log2(self, env: object, instance: bytes, status: int, category: bytes, message: bytes) -> None:
        self.messages.append((status, category.decode(), message.decode()))

    def _log3(self, env: object, status: int, category: bytes, message: bytes) -> None:
        self.messages.append((status, category.decode(), message.decode()))

    def errors(self) -> list[str]:
        return [text for status, _, text in self.messages if status >= 3]
