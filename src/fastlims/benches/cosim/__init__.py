"""The virtual bench's co-simulation master (the VEOS role): FMI 2.0 and 3.0 co-simulation FMUs
connected as ``inter_connection.json`` says, stepped with a fixed communication step (Jacobi or
Gauss-Seidel), driven by the request's ``custom_profile`` and the DoE run's parameters, stopped
by the test's duration, the profile's end or a stop condition, with live metrics in batches.

    with load_system([cycler_fmu, cell_fmu], connections) as system:
        spec = SimulationSpec(step_size=1.0, stop_time=3600.0,
                              stop_conditions=[{"signal": "Cell.V", "op": "<=", "value": 2.5}])
        result = run(system, spec, on_batch=publish, batch_every_s=0.5)

As in FMPy, the model is plain data and the runner a free function: :func:`load_system` gives a
:class:`CosimSystem` (the FMUs, their variables, the validated connections), :func:`run`
simulates it (:mod:`.engine`), its FMI calls prepared once and made from C (:mod:`.fastpath`),
its rows recorded and handed out in :class:`Batch` es (:mod:`.recording`).

Pure apart from loading the FMUs. A crashing FMU kills its process: the worker runs each
simulation with :func:`run_in_subprocess`, which reports the crash as a failed run.
"""

from fastlims.benches.cosim.engine import run
from fastlims.benches.cosim.errors import CosimError
from fastlims.benches.cosim.fastpath import RowCall
from fastlims.benches.cosim.isolated import run_in_subprocess, simulate
from fastlims.benches.cosim.recording import Batch, RunResult
from fastlims.benches.cosim.spec import SimulationSpec, StopCondition, stop_conditions_from_procedures
from fastlims.benches.cosim.system import Connection, CosimSystem, LoadedFmu, Port, load_system
from fastlims.benches.cosim.units import Conversion, conversion

__all__ = [
    "Batch",
    "Connection",
    "Conversion",
    "CosimError",
    "CosimSystem",
    "LoadedFmu",
    "Port",
    "RowCall",
    "RunResult",
    "SimulationSpec",
    "StopCondition",
    "conversion",
    "load_system",
    "run",
    "run_in_subprocess",
    "simulate",
    "stop_conditions_from_procedures",
]
