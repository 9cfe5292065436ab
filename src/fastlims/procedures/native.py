"""The C controller (``controller.c``, built with the package) behind a small Python face.

The virtual bench's step loop calls ``fl_ctl_row`` once per communication point through a
prepared ctypes call (:attr:`NativeController.row_function`, :attr:`NativeController.handle`);
Python runs no code per point. :class:`NativeController` fills the C struct from a
:class:`~.program.Program`, a :class:`RowLayout` (where the signals sit in a row of the caller's
row buffer) and the unit conversions of the ports, and reads back how the run ended.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from fastlims.procedures.interpreter import Trip
from fastlims.procedures.program import Code, Limit, Program, check

# The columns fl_ctl_row writes into each row, in the C side's OUT_* order (BDF names; "record"
# is the sampling decision, 1.0 for a row to keep).
OUT_COLUMNS = (
    "Test Time / s",
    "Current / A",
    "Step Count / 1",
    "Cycle Count / 1",
    "Step ID",
    "Charge Capacity / Ah",
    "Discharge Capacity / Ah",
    "Charge Energy / Wh",
    "Discharge Energy / Wh",
    "Ambient Temperature / degC",
    "record",
    "Voltage / V",
    "Temperature T1 / degC",
)
MAX_DEPTH = 16
_LIMITS = len(Limit)

_I64, _F64 = ctypes.c_int64, ctypes.c_double


class _Input(ctypes.Structure):
    """Mirror of ``Input`` in controller.c."""

    _fields_ = [("set", ctypes.c_void_p), ("instance", ctypes.c_void_p), ("vr", _I64), ("fmi3", _I64)]


class _Controller(ctypes.Structure):
    """Mirror of ``Controller`` in controller.c (every field 8 bytes: no padding)."""

    _fields_ = [
        ("ops", ctypes.c_void_p),
        ("n_ops", _I64),
        ("profile", ctypes.c_void_p),
        ("n_profile", _I64),
        ("stride", _I64),
        ("col_time", _I64),
        ("col_voltage", _I64),
        ("col_temperature", _I64),
        ("col_current_cmd", _I64),
        ("col_ambient_cmd", _I64),
        ("out", _I64 * len(OUT_COLUMNS)),
        ("voltage_scale", _F64),
        ("voltage_offset", _F64),
        ("temperature_scale", _F64),
        ("temperature_offset", _F64),
        ("current_gain", _F64),
        ("current_bias", _F64),
        ("ambient_gain", _F64),
        ("ambient_bias", _F64),
        ("safety", _F64 * _LIMITS),
        ("delay", _F64),
        ("period", _F64),
        ("voltage_delta", _F64),
        ("current_delta", _F64),
        ("tick", _F64),
        ("t0", _F64),
        ("resistance", _F64),
        ("rating_scale", _F64),
        ("allow_external", _I64),
        ("current_input", _Input),
        ("ambient_input", _Input),
        ("pc", _I64),
        ("depth", _I64),
        ("loops", _I64 * MAX_DEPTH),
        ("step_count", _I64),
        ("cycle_count", _I64),
        ("step_new", _I64),
        ("has_previous", _I64),
        ("finished", _I64),
        ("has_recorded", _I64),
        ("opening", _I64),
        ("error", _F64),
        ("command", _F64),
        ("ambient", _F64),
        ("step_start", _F64),
        ("step_charge", _F64),
        ("charge_ah", _F64),
        ("discharge_ah", _F64),
        ("charge_wh", _F64),
        ("discharge_wh", _F64),
        ("previous_t", _F64),
        ("previous_i", _F64),
        ("previous_v", _F64),
        ("exceeded_since", _F64 * _LIMITS),
        ("recorded_t", _F64),
        ("recorded_v", _F64),
        ("recorded_i", _F64),
        ("trip_limit", _I64),
        ("trip_value", _F64),
        ("trip_at", _F64),
        ("trip_held", _F64),
        ("fmu_status", _I64),
        ("fmu_input", _I64),
    ]


class ControllerUnavailable(RuntimeError):
    """The compiled controller is missing or does not match this Python code."""


@cache
def library() -> ctypes.CDLL:
    """The compiled controller, built by ``pip install`` beside this module."""
    here = Path(__file__).parent
    found = [here / f"_controller{suffix}" for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    path = next((p for p in found if p.exists()), None)
    if path is None:
        raise ControllerUnavailable(
            f"the procedure controller is not built (no _controller*.so in {here}): "
            "install FastLIMS with `pip install .` (it compiles controller.c; needs a C compiler)"
        )
    lib = ctypes.CDLL(str(path))
    lib.fl_ctl_sizeof.restype = ctypes.c_int64
    lib.fl_ctl_sizeof.argtypes = []
    size = lib.fl_ctl_sizeof()
    if size != ctypes.sizeof(_Controller):
        raise ControllerUnavailable(
            f"the compiled controller ({path.name}, {size} bytes of state) does not match this FastLIMS "
            f"({ctypes.sizeof(_Controller)} bytes): reinstall with `pip install .`"
        )
    lib.fl_ctl_begin.restype = ctypes.c_int
    lib.fl_ctl_begin.argtypes = [ctypes.POINTER(_Controller)]
    lib.fl_ctl_row.restype = ctypes.c_int
    lib.fl_ctl_row.argtypes = [ctypes.POINTER(_Controller), ctypes.POINTER(ctypes.c_double)]
    return lib


@dataclass(frozen=True)
class RowLayout:
    """Where the controller reads and writes in a row of doubles (``-1``: not there).

    ``current_command`` and ``ambient_command`` are written into the *next* row (the values the
    next point's fmiSetReal sends), so the caller's buffer needs one row more than it steps.
    ``out``: a column per :data:`OUT_COLUMNS` entry, or -1 for one not kept."""

    stride: int
    time: int
    voltage: int
    out: tuple[int, ...]
    temperature: int = -1
    current_command: int = -1
    ambient_command: int = -1


@dataclass(frozen=True)
class FmuInput:
    """An FMU input the controller sets itself: the address of ``fmi2SetReal`` (or, with ``fmi3``,
    ``fmi3SetFloat64``), the instance handle and the value reference."""

    set_function: int
    instance: int
    value_reference: int
    fmi3: bool = False


@dataclass(frozen=True)
class Conversions:
    """Between the FMU ports' units and the controller's (V, degC, A positive = charge):
    measured SI = raw * scale + offset; command raw = SI * gain + bias."""

    voltage: tuple[float, float] = (1.0, 0.0)
    temperature: tuple[float, float] = (1.0, 0.0)
    current: tuple[float, float] = (1.0, 0.0)
    ambient: tuple[float, float] = (1.0, 0.0)


class NativeController:
    """One run of a program by the C controller over the caller's row buffer.

    With ``current_input`` (and ``ambient_input``) the controller sets the next point's values in
    the FMU itself; without, it writes them into the next row at the layout's command columns."""

    def __init__(
        self,
        program: Program,
        layout: RowLayout,
        conversions: Conversions = Conversions(),
        *,
        tick_s: float,
        t0: float = 0.0,
        allow_external: bool = False,
        current_input: FmuInput | None = None,
        ambient_input: FmuInput | None = None,
    ) -> None:
        check(program)
        if not tick_s > 0 or not math.isfinite(tick_s):
            raise ValueError(f"tick_s must be a positive number of seconds, got {tick_s}")
        if len(layout.out) != len(OUT_COLUMNS):
            raise ValueError(f"layout.out needs {len(OUT_COLUMNS)} columns, got {len(layout.out)}")
        self.program = program
        self._lib = library()
        self._ops, self._profile = program.arrays()  # kept alive: the struct points into them
        c = self.state = _Controller()
        c.ops = self._ops.ctypes.data
        c.n_ops = len(program.ops)
        c.profile = self._profile.ctypes.data
        c.n_profile = len(self._profile)
        c.stride = layout.stride
        c.col_time, c.col_voltage, c.col_temperature = layout.time, layout.voltage, layout.temperature
        c.col_current_cmd, c.col_ambient_cmd = layout.current_command, layout.ambient_command
        c.out[:] = list(layout.out)
        c.voltage_scale, c.voltage_offset = conversions.voltage
        c.temperature_scale, c.temperature_offset = conversions.temperature
        c.current_gain, c.current_bias = conversions.current
        c.ambient_gain, c.ambient_bias = conversions.ambient
        safety = program.safety.as_array()
        c.safety[:] = list(safety[:_LIMITS])
        c.delay = float(safety[_LIMITS])
        sampling = program.sampling
        c.period, c.voltage_delta, c.current_delta = (
            sampling.period_s,
            sampling.voltage_delta_V,
            sampling.current_delta_A,
        )
        c.tick, c.t0 = tick_s, t0
        c.resistance = program.resistance_guess_ohm
        currents = (program.safety.max_charge_current_A, program.safety.max_discharge_current_A)
        c.rating_scale = max((x for x in currents if math.isfinite(x)), default=0.0)
        c.allow_external = int(allow_external)
        c.ambient = program.initial_ambient_C
        for field, given in (("current_input", current_input), ("ambient_input", ambient_input)):
            if given is not None:
                target = getattr(c, field)
                target.set, target.instance = given.set_function, given.instance
                target.vr, target.fmi3 = given.value_reference, int(given.fmi3)
        self.handle = ctypes.byref(c)
        # A pointer of its own without argtypes: the step loop passes prepared byref objects as
        # they are (argtypes would convert them on every call).
        self.row_function: Any = self._lib["fl_ctl_row"]
        self.row_function.restype = ctypes.c_int
        self.code = Code(self._lib.fl_ctl_begin(ctypes.byref(c)))

    @property
    def command(self) -> float:
        """The current (A, positive = charge) the controller commands next."""
        return float(self.state.command)

    @property
    def command_raw(self) -> float:
        """:attr:`command` in the FMU's unit and sign (what its current input is set to)."""
        return float(self.state.command * self.state.current_gain + self.state.current_bias)

    @property
    def ambient_C(self) -> float:
        return float(self.state.ambient)

    @property
    def finished(self) -> Code | None:
        return Code(self.state.finished) if self.state.finished else None

    @property
    def trip(self) -> Trip | None:
        c = self.state
        if c.trip_limit < 0:
            return None
        return Trip(Limit(c.trip_limit), float(c.trip_value), float(c.trip_at), float(c.trip_held))

    def row(self, row: np.ndarray) -> Code:
        """Run one point on ``row`` (a float64 view with at least two rows of ``stride``)."""
        if row.dtype != np.float64 or not row.flags.c_contiguous or row.size < 2 * self.state.stride:
            raise ValueError("row must be a C-contiguous float64 buffer of at least two rows")
        pointer = row.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        return Code(self.row_function(self.handle, pointer))

    @property
    def counters(self) -> dict[str, float]:
        c = self.state
        return {
            "step_count": float(c.step_count),
            "cycle_count": float(c.cycle_count),
            "charge_Ah": float(c.charge_ah),
            "discharge_Ah": float(c.discharge_ah),
            "charge_Wh": float(c.charge_wh),
            "discharge_Wh": float(c.discharge_wh),
        }
