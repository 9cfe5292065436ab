"""Test FMUs compiled from C sources kept in this package (FMI 2.0 and 3.0 co-simulation).

Models: ``battery_cell`` (equivalent-circuit cell: OCV(SOC), R0, two RC branches, lumped
thermal model; input current I, positive = discharge; ``series_cells`` and the cell OCV window
make it a module or pack), ``cycler`` (one channel imposing a
current: constant or following a setpoint input) and ``lfp_cell`` (an LFP cell as a single FMU
in a partner's units and sign: i_mA positive = charge, u_mV, soc_pct, t_cell_degC, and the
ambient temperature t_amb_degC as an input). Each also comes as ``<model>_crash``,
``<model>_error`` and ``<model>_nan``, which fail on purpose at ``fault_time_s``.

    path = build_fmu("battery_cell", "3.0", tmp_dir)   # -> tmp_dir/battery_cell_fmi3.fmu
    path = build_fmu("battery_cell", "3.0", tmp_dir, name="Cell",
                     start_values={"capacity_Ah": 20.0, "series_cells": 12})   # other start values
"""

from fastlims.peers.fmus.build import (
    FAULTS,
    FMI_VERSIONS,
    FmuBuildError,
    available_models,
    build_fmu,
    default_cache_dir,
)

__all__ = ["FAULTS", "FMI_VERSIONS", "FmuBuildError", "available_models", "build_fmu", "default_cache_dir"]
