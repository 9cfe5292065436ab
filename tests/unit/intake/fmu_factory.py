"""Small real FMUs for the intake tests: C models compiled with gcc against the FMI headers that
FMPy ships, zipped in Python, and helpers that damage them in every way the validation checks.

Every FMI function is exported (FMPy refuses a binary that lacks one): the few a co-simulation
needs are implemented, the rest are generated from the header's typedefs as stubs.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import uuid
import zipfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import fmpy

C_CODE = Path(fmpy.__file__).with_name("c-code")


@dataclass(frozen=True)
class Var:
    name: str
    causality: str  # input | output | parameter
    type: str = "Real"  # Real | Integer | Boolean
    start: float = 0.0
    unit: str = ""  # declared on the variable when given
    variability: str = ""  # FMI's; "" = the factory's default (continuous/discrete, parameters fixed)


@dataclass(frozen=True)
class Model:
    name: str
    variables: tuple[Var, ...]
    step: str  # C statements; variables are C macros; h is the step size
    description: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())


BATTERY_CELL = Model(
    "battery_cell",
    (
        Var("capacity_Ah", "parameter", start=5.0),
        Var("I", "input"),
        Var("V", "output", start=4.2),
        Var("SOC", "output", start=1.0),
    ),
    "SOC = SOC - I * h / 3600.0 / capacity_Ah; V = 3.0 + 1.2 * SOC - 0.015 * I;",
)
CYCLER = Model(
    "cycler",
    (
        Var("I_set", "parameter", start=2.5),
        Var("V_min", "parameter", start=3.0),
        Var("V", "input", start=4.2),
        Var("I", "output", start=2.5),
        Var("done", "output", "Boolean"),
        Var("steps", "output", "Integer"),
    ),
    "I = (V > V_min) ? I_set : 0.0; done = (V <= V_min) ? 1.0 : 0.0; steps = steps + 1.0;",
)
MODELS = {m.name: m for m in (BATTERY_CELL, CYCLER)}

VALID_CONNECTIONS = [
    {"InSignalReference": "battery_cell/I", "OutSignalReference": "cycler/I"},
    {"InSignalReference": "cycler/V", "OutSignalReference": "battery_cell/V"},
]


def interconnection(connections: list[dict[str, str]] | None = None) -> bytes:
    document = {"FMU_signal_connections": VALID_CONNECTIONS if connections is None else connections}
    return json.dumps(document, indent=2).encode()


# --- C source ------------------------------------------------------------------------------------

_TYPEDEF = re.compile(r"typedef\s+([\w\s\*]+?)\s*\b(fmi[23]\w+)TYPE\s*\(([^;]*?)\)\s*;", re.S)


def _signatures(version: int) -> dict[str, tuple[str, str]]:
    header = (C_CODE / f"fmi{version}FunctionTypes.h").read_text()
    header = re.sub(r"/\*.*?\*/", "", header, flags=re.S)
    found = {}
    for returns, name, params in _TYPEDEF.findall(header):
        params = " ".join(params.split())
        # C17 needs a name for every parameter of a definition (fmi2SerializeFMUstate has one without).
        pieces = []
        for index, piece in enumerate(params.split(",")):
            piece = piece.strip()
            if piece.endswith("[]") and len(piece[:-2].split()) == 1:
                piece = f"{piece[:-2]} unnamed{index}[]"
            pieces.append(piece)
        found[name] = (" ".join(returns.split()), ", ".join(pieces))
    return found


def _defines(model: Model) -> str:
    return "\n".join(f"#define {v.name} (inst->v[{i}])" for i, v in enumerate(model.variables))


def _starts(model: Model) -> str:
    return " ".join(f"inst->v[{i}] = {v.start!r};" for i, v in enumerate(model.variables))


# GET/SET copy between the caller's arrays and the instance's values (every variable is a double).
_ACCESS = (
    "#define GET(T, vr, n, out) for (size_t i_ = 0; i_ < (n); i_++)"
    " (out)[i_] = (vr)[i_] < NV ? (T)inst->v[(vr)[i_]] : 0\n"
    "#define GETB(vr, n, out) for (size_t i_ = 0; i_ < (n); i_++)"
    " (out)[i_] = (vr)[i_] < NV ? inst->v[(vr)[i_]] != 0 : 0\n"
    "#define SET(vr, n, in) for (size_t i_ = 0; i_ < (n); i_++) if ((vr)[i_] < NV) inst->v[(vr)[i_]] = (in)[i_]"
)
_I2 = "Instance *inst = c;"
_I3 = "Instance *inst = instance;"
_N3 = "valueReferences, nValueReferences, values"
_FMI2_BODIES = {
    "fmi2GetTypesPlatform": "return fmi2TypesPlatform;",
    "fmi2GetVersion": "return fmi2Version;",
    "fmi2Instantiate": "Instance *inst = calloc(1, sizeof(Instance)); RESET; return inst;",
    "fmi2FreeInstance": "free(c);",
    "fmi2Reset": f"{_I2} RESET; return fmi2OK;",
    "fmi2GetReal": f"{_I2} GET(fmi2Real, vr, nvr, value); return fmi2OK;",
    "fmi2GetInteger": f"{_I2} GET(fmi2Integer, vr, nvr, value); return fmi2OK;",
    "fmi2GetBoolean": f"{_I2} GETB(vr, nvr, value); return fmi2OK;",
    "fmi2SetReal": f"{_I2} SET(vr, nvr, value); return fmi2OK;",
    "fmi2SetInteger": f"{_I2} SET(vr, nvr, value); return fmi2OK;",
    "fmi2SetBoolean": f"{_I2} SET(vr, nvr, value); return fmi2OK;",
    "fmi2DoStep": f"{_I2} double h = communicationStepSize; STEP; return fmi2OK;",
}
_FMI3_BODIES = {
    "fmi3GetVersion": "return fmi3Version;",
    "fmi3InstantiateCoSimulation": "Instance *inst = calloc(1, sizeof(Instance)); RESET; return inst;",
    "fmi3FreeInstance": "free(instance);",
    "fmi3Reset": f"{_I3} RESET; return fmi3OK;",
    "fmi3GetFloat64": f"{_I3} GET(fmi3Float64, {_N3}); return fmi3OK;",
    "fmi3GetInt32": f"{_I3} GET(fmi3Int32, {_N3}); return fmi3OK;",
    "fmi3GetBoolean": f"{_I3} GETB({_N3}); return fmi3OK;",
    "fmi3SetFloat64": f"{_I3} SET({_N3}); return fmi3OK;",
    "fmi3SetInt32": f"{_I3} SET({_N3}); return fmi3OK;",
    "fmi3SetBoolean": f"{_I3} SET({_N3}); return fmi3OK;",
    "fmi3DoStep": (
        f"{_I3} double h = communicationStepSize; STEP;"
        " *eventHandlingNeeded = fmi3False; *terminateSimulation = fmi3False; *earlyReturn = fmi3False;"
        " *lastSuccessfulTime = currentCommunicationPoint + h; return fmi3OK;"
    ),
}


def c_source(model: Model, version: int) -> str:
    bodies = _FMI2_BODIES if version == 2 else _FMI3_BODIES
    lines = [
        "#include <stdlib.h>",
        f'#include "fmi{version}Functions.h"',
        f"#define NV {len(model.variables)}",
        "typedef struct { double v[NV]; } Instance;",
        _defines(model),
        f"#define RESET {_starts(model)}",
        f"#define STEP {{ {model.step} }}",
        _ACCESS,
    ]
    for name, (returns, params) in _signatures(version).items():
        body = bodies.get(name)
        if body is None:
            if returns.endswith("Status"):
                body = f"return fmi{version}OK;"
            elif returns == "void":
                body = ""
            else:
                body = "return 0;"
        lines.append(f"FMI{version}_Export {returns} {name}({params}) {{ {body} }}")
    return "\n".join(lines) + "\n"


# --- model description --------------------------------------------------------------------------


def _unit_definitions(model: Model) -> str:
    """FMPy wants every unit a variable names defined (the checks read only the name)."""
    units = sorted({v.unit for v in model.variables if v.unit})
    if not units:
        return ""
    return "  <UnitDefinitions>" + "".join(f'<Unit name="{u}"/>' for u in units) + "</UnitDefinitions>\n"


def model_description(model: Model, version: int, token: str) -> str:
    if version == 2:
        rows = []
        for index, v in enumerate(model.variables):
            variability = v.variability or (
                "continuous"
                if v.type == "Real" and v.causality != "parameter"
                else ("fixed" if v.causality == "parameter" else "discrete")
            )
            initial = ' initial="exact"' if v.causality in ("output", "parameter") else ""
            start = int(v.start) if v.type != "Real" else v.start
            start_text = ("true" if start else "false") if v.type == "Boolean" else start
            unit = f' unit="{v.unit}"' if v.unit else ""
            rows.append(
                f'    <ScalarVariable name="{v.name}" valueReference="{index}" causality="{v.causality}"'
                f' variability="{variability}"{initial}><{v.type}{unit} start="{start_text}"/></ScalarVariable>'
            )
        outputs = "".join(
            f'<Unknown index="{i + 1}"/>' for i, v in enumerate(model.variables) if v.causality == "output"
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<fmiModelDescription fmiVersion="2.0" modelName="{model.name}" guid="{token}"'
            ' generationTool="fastlims tests" variableNamingConvention="flat" numberOfEventIndicators="0">\n'
            f'  <CoSimulation modelIdentifier="{model.name}" canHandleVariableCommunicationStepSize="true"/>\n'
            + _unit_definitions(model)
            + '  <DefaultExperiment startTime="0" stopTime="10" stepSize="1"/>\n'
            "  <ModelVariables>\n" + "\n".join(rows) + "\n  </ModelVariables>\n"
            f"  <ModelStructure><Outputs>{outputs}</Outputs></ModelStructure>\n"
            "</fmiModelDescription>\n"
        )
    types3 = {"Real": "Float64", "Integer": "Int32", "Boolean": "Boolean"}
    rows = ['    <Float64 name="time" valueReference="1000" causality="independent" variability="continuous"/>']
    for index, v in enumerate(model.variables):
        kind = types3[v.type]
        variability = (
            f' variability="{v.variability}"'
            if v.variability
            else (
                ""
                if v.type == "Real" and v.causality != "parameter"
                else (' variability="fixed"' if v.causality == "parameter" else ' variability="discrete"')
            )
        )
        initial = ' initial="exact"' if v.causality in ("output", "parameter") else ""
        start = (
            ("true" if v.start else "false")
            if v.type == "Boolean"
            else (int(v.start) if v.type == "Integer" else v.start)
        )
        unit = f' unit="{v.unit}"' if v.unit else ""
        rows.append(
            f'    <{kind} name="{v.name}" valueReference="{index}" causality="{v.causality}"'
            f'{variability}{initial}{unit} start="{start}"/>'
        )
    outputs = "".join(
        f'<Output valueReference="{i}"/>' for i, v in enumerate(model.variables) if v.causality == "output"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<fmiModelDescription fmiVersion="3.0" modelName="{model.name}" instantiationToken="{token}"'
        ' generationTool="fastlims tests">\n'
        f'  <CoSimulation modelIdentifier="{model.name}" canHandleVariableCommunicationStepSize="true"/>\n'
        + _unit_definitions(model)
        + '  <DefaultExperiment startTime="0" stopTime="10" stepSize="1"/>\n'
        "  <ModelVariables>\n" + "\n".join(rows) + "\n  </ModelVariables>\n"
        f"  <ModelStructure>{outputs}</ModelStructure>\n"
        "</fmiModelDescription>\n"
    )


# --- build ----------------------------------------------------------------------------------------


@cache
def _compiled(model: Model, version: int, work: Path) -> bytes:
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"{model.name}_fmi{version}.c"
    source.write_text(c_source(model, version))
    library = work / f"{model.name}_fmi{version}.so"
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise RuntimeError("gcc is needed to build the test FMUs (Debian package gcc)")
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-O1", "-std=gnu11", f"-I{C_CODE}", "-o", str(library), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    return library.read_bytes()


def fmu_entries(model: Model, version: int, work: Path) -> dict[str, bytes]:
    """The files of a valid FMU, by archive name."""
    token = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"fastlims-test/{model.name}/{version}")) + "}"
    folder = fmpy.platform if version == 2 else fmpy.platform_tuple
    return {
        "modelDescription.xml": model_description(model, version, token).encode(),
        f"binaries/{folder}/{model.name}{fmpy.sharedLibraryExtension}": _compiled(model, version, work),
    }


def zip_bytes(entries: dict[str, bytes], *, stored: frozenset[str] = frozenset()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def build_fmu(model: str | Model, fmi_version: int, out_dir: Path) -> Path:
    """A valid FMU file ``<out_dir>/<model>.fmu`` (same call as ``fastlims.peers.fmus.build_fmu``)."""
    model = MODELS[model] if isinstance(model, str) else model
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model.name}.fmu"
    path.write_bytes(zip_bytes(fmu_entries(model, fmi_version, out_dir / ".build")))
    return path


def padded(model: Model, version: int, work: Path, extra_bytes: int, seed: int = 7) -> bytes:
    """A valid FMU with an incompressible resource of ``extra_bytes`` (for size benchmarks)."""
    import random

    entries = fmu_entries(model, version, work)
    entries["resources/table.bin"] = random.Random(seed).randbytes(extra_bytes)
    return zip_bytes(entries, stored=frozenset({"resources/table.bin"}))
