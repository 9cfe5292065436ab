"""What a request runs: its procedure, chosen and checked at submit from the seed's ``variables``.

``variables.test_procedures`` (the seed's list) is either empty, and the catalog test name's
default procedure for the request's UUT and standard runs, or it holds the requester's own
procedure: text lines (one step per line, :mod:`fastlims.procedures.text`) or one JSON object in
the ``fastlims-procedure/1`` form. ``variables.custom_profile.Name`` names a UUT port role
(:data:`PROFILE_ROLES`): its ``unit`` converts to SI, its values are signed by the Battery Data
Format (positive = charge). A role profile that no step follows (``source: custom_profile``) is
the test itself: one profile step ending at its last point (:data:`SOURCES` ``profile``). The old
``FMU_name/Port`` form still drives that FMU input directly; a procedure cannot follow it.

Pure: data in (the request's ``Variables``, the UUT's ratings), data out (the procedure and every
problem as ``(field, message)``). The service turns problems into a 422.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from fastlims.catalog.procedure_sources import Reading, read, validate_all
from fastlims.messaging.variables import SIGNAL_REFERENCE, CustomProfile, Variables
from fastlims.procedures.defaults import FIXTURES, NoDefaultProcedure, bench_kinds, default_procedure, refusal
from fastlims.procedures.model import (
    MAX_POINTS,
    MAX_STEPS,
    AmbientStep,
    AnyStep,
    ExternalStep,
    Problem,
    Procedure,
    ProcedureError,
    ProfileStep,
    Quantity,
    RestStep,
    Termination,
    parse_json,
)
from fastlims.procedures.ratings import UutRatings
from fastlims.procedures.text import step_text

__all__ = [
    "PROFILE_ROLES",
    "PROFILE_UNITS",
    "SOURCES",
    "TEST_PROCEDURES",
    "Chosen",
    "choose",
    "profile_procedure",
    "profile_role",
    "required_roles",
    "si_points",
]

#: Where a request's procedure came from (``TestRequests.ProcedureSource``).
SOURCES = ("default", "request", "profile")
#: The UUT port roles a ``custom_profile`` may name (the Digital Twin maps them to FMU ports).
PROFILE_ROLES = ("current", "power", "voltage", "ambient_temperature")
#: unit -> (scale, offset) into SI (A, W, V) and degC: si = value * scale + offset. "" = already SI.
PROFILE_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "current": {"": (1.0, 0.0), "A": (1.0, 0.0), "mA": (1e-3, 0.0), "kA": (1e3, 0.0)},
    "power": {"": (1.0, 0.0), "W": (1.0, 0.0), "mW": (1e-3, 0.0), "kW": (1e3, 0.0)},
    "voltage": {"": (1.0, 0.0), "V": (1.0, 0.0), "mV": (1e-3, 0.0), "kV": (1e3, 0.0)},
    "ambient_temperature": {"": (1.0, 0.0), "degC": (1.0, 0.0), "°C": (1.0, 0.0), "K": (1.0, -273.15)},
}
TEST_PROCEDURES = "variables.test_procedures"
CUSTOM_PROFILE = "variables.custom_profile"
_FORMS = (
    "text lines (one step per line, e.g. 'Discharge at 1C until 2.5 V') or one JSON object in the"
    " fastlims-procedure/1 form (GET /api/schemas/procedure.json); see docs/procedures.md"
)
_STOP_KEYS = frozenset({"signal", "op", "value"})


@dataclass(frozen=True)
class Chosen:
    """The procedure a request will run (unresolved: its variables stay for the DoE), its source
    (one of :data:`SOURCES`) and, for the text form, each step's line."""

    procedure: Procedure
    source: str
    lines: dict[str, int] = field(default_factory=dict)
    #: How the requester's procedure was read; when parts did not parse, ``procedure`` is the rest
    #: of it with placeholders, only checked and never run.
    reading: Reading | None = None

    @property
    def checking_only(self) -> bool:
        return self.reading is not None and self.reading.procedure is None


# --------------------------------------------------------------------------- custom_profile roles


def profile_role(profile: CustomProfile | None) -> str | None:
    """The UUT port role a ``custom_profile`` names, or None (no profile, or the ``FMU/Port`` form)."""
    return profile.Name if profile is not None and profile.Name in PROFILE_ROLES else None


def si_points(profile: CustomProfile) -> list[tuple[float, float]]:
    """The role profile's ``[t_s, value]`` points in SI (A, W, V; degC for ambient_temperature),
    BDF-signed as given. Raises ValueError naming the unit when the role does not take it."""
    role = profile_role(profile)
    if role is None:
        raise ValueError(f"custom_profile Name {profile.Name!r} is not a UUT port role")
    units = PROFILE_UNITS[role]
    conversion = units.get(profile.unit.strip())
    if conversion is None:
        accepted = ", ".join(repr(u) for u in units if u)
        raise ValueError(f"unit {profile.unit!r} is not one the {role} role takes: {accepted} (or none for SI)")
    scale, offset = conversion
    # 12 significant digits: 400 K is 126.85 degC, not 126.85000000000002.
    return [(p.timestamp, float(f"{p.value * scale + offset:.12g}")) for p in profile.values]


def profile_procedure(role: str, points: Sequence[tuple[float, float]]) -> Procedure:
    """The requester's role profile as the whole test, with the UUT's safety limits (filled at
    resolution). Current, power and voltage: one step ``Follow <role> profile from custom_profile``
    ending at the last point. Ambient temperature (no profile step sets it): an open-circuit soak
    per point (``Set ambient to T degC and rest for`` the time to the next point), the last point
    a set-point that ends the test."""
    description = "The request's custom_profile run as the test (ProcedureSource 'profile')"
    if role != "ambient_temperature":
        quantity = cast(Quantity, role)
        step = ProfileStep(type="profile", quantity=quantity, source="custom_profile")
        return Procedure(name=f"{role} profile from custom_profile", description=description, steps=[step])
    steps: list[AnyStep] = []
    if points and points[0][0] > 0:
        steps.append(RestStep(type="rest", until=[Termination(time_s=float(points[0][0]))]))
    for index, (t, value) in enumerate(points):
        until = [Termination(time_s=float(points[index + 1][0] - t))] if index + 1 < len(points) else []
        steps.append(AmbientStep(type="ambient", temperature_C=float(value), until=until))
    return Procedure(name="ambient temperature profile from custom_profile", description=description, steps=steps)


# --------------------------------------------------------------------------- the choice at submit


def choose(
    variables: Variables | None,
    ratings: UutRatings,
    *,
    test_code: str,
    standard: str | None,
    bench: str,
) -> tuple[Chosen | None, list[tuple[str, str]]]:
    """The procedure a request runs and every ``(field, message)`` problem (none: it can run).

    Checks what the submit promises: the procedure parses, resolves against the UUT's ratings
    (currents, voltages, temperatures, terminations, repeat counts), a bench of ``bench`` kind
    (``Virtual``/``Physical``) can perform it, and a role ``custom_profile`` is followed.
    """
    variables = variables or Variables()
    problems: list[tuple[str, str]] = []
    profile = variables.custom_profile
    role, points = _role_profile(profile, problems)
    chosen: Chosen | None
    if variables.test_procedures:
        chosen = _requested(variables.test_procedures, problems)
        if chosen is not None:
            _check_profile_use(chosen.procedure, profile, role, problems)
    elif role is not None and points is not None:
        chosen = _profile_test(role, points, problems)
    else:
        try:
            chosen = Chosen(default_procedure(test_code, ratings, standard=standard), "default")
        except NoDefaultProcedure as exc:
            return None, [*problems, ("test_name", exc.reason)]
    if chosen is None:
        return None, problems
    field_name = {"default": "test_name", "request": TEST_PROCEDURES, "profile": CUSTOM_PROFILE}[chosen.source]
    follows = points if role in ("current", "power", "voltage") else None
    # Steps following a profile the request gives in another form were named above; resolving them
    # against the wrong quantity (or none) would only repeat it.
    mismatched = {
        path
        for path, step in _profile_steps(chosen.procedure)
        if profile is not None and (step.quantity != role or points is None)
    }
    reading = chosen.reading
    for problem in validate_all(chosen.procedure, ratings, lines=chosen.lines, custom_profile=follows):
        if problem.path in mismatched or (reading is not None and reading.skip(problem)):
            continue  # already said: a profile in another quantity, or a part that did not parse
        problems.append((field_name, reading.describe(problem) if reading is not None else str(problem)))
    problems += _bench_problems(chosen, ratings, test_code=test_code, standard=standard, bench=bench)
    return (None if problems or chosen.checking_only else chosen), problems


def _requested(test_procedures: Sequence[str | dict[str, Any]], problems: list[tuple[str, str]]) -> Chosen | None:
    """The requester's procedure from ``test_procedures`` (when parts of it did not parse, the
    rest of it, to check and never run); problems name the line or step."""
    items = list(test_procedures)
    stops = [i for i, item in enumerate(items) if isinstance(item, dict) and set(item) >= _STOP_KEYS]
    if stops:
        problems.append(
            (
                TEST_PROCEDURES,
                f"test_procedures[{stops[0]}] is a stop condition ({{signal, op, value}}), which requests no longer"
                f" take: test_procedures holds the procedure to run, as {_FORMS}; a cut-off is a step's"
                " termination ('Discharge at 1C until 2.5 V')",
            )
        )
        return None
    if all(isinstance(item, str) for item in items):
        source: object = items
    elif len(items) == 1 and isinstance(items[0], dict):
        source = items[0]
    else:
        kinds = ", ".join(sorted({"text" if isinstance(i, str) else "object" for i in items}))
        problems.append((TEST_PROCEDURES, f"test_procedures holds {_FORMS}; got {len(items)} items ({kinds})"))
        return None
    reading = read(source)
    problems.extend((TEST_PROCEDURES, reading.describe(p)) for p in reading.problems)
    if reading.to_check is None:
        return None
    return Chosen(reading.to_check, "request", reading.lines, reading)


def _role_profile(
    profile: CustomProfile | None, problems: list[tuple[str, str]]
) -> tuple[str | None, list[tuple[float, float]] | None]:
    if profile is None:
        return None, None
    role = profile_role(profile)
    if role is None:
        if not SIGNAL_REFERENCE.match(profile.Name):
            problems.append(
                (
                    f"{CUSTOM_PROFILE}.Name",
                    f"{profile.Name[:80]!r} names neither a UUT port role ({', '.join(PROFILE_ROLES)}) nor an FMU"
                    " input 'FMU_name/Port'",
                )
            )
        return None, None
    if profile.type != "input":
        problems.append((f"{CUSTOM_PROFILE}.type", f"a {role} profile drives the UUT: its type is 'input'"))
        return role, None
    limit = MAX_STEPS if role == "ambient_temperature" else MAX_POINTS
    if len(profile.values) > limit:
        problems.append(
            (f"{CUSTOM_PROFILE}.values", f"a {role} profile has at most {limit} points, got {len(profile.values)}")
        )
        return role, None
    try:
        return role, si_points(profile)
    except ValueError as exc:
        problems.append((f"{CUSTOM_PROFILE}.unit", str(exc)))
        return role, None


def _profile_test(role: str, points: list[tuple[float, float]], problems: list[tuple[str, str]]) -> Chosen | None:
    if len(points) < 2:
        problems.append(
            (
                f"{CUSTOM_PROFILE}.values",
                f"a {role} profile run as the test needs two points or more (it ends at the last)",
            )
        )
        return None
    return Chosen(profile_procedure(role, points), "profile")


def _profile_steps(procedure: Procedure) -> list[tuple[str, ProfileStep]]:
    return [(p, s) for p, s in procedure.walk() if isinstance(s, ProfileStep) and s.source == "custom_profile"]


def _check_profile_use(
    procedure: Procedure, profile: CustomProfile | None, role: str | None, problems: list[tuple[str, str]]
) -> None:
    """A role profile must be followed by a step of its quantity; a step may only follow a role profile."""
    following = _profile_steps(procedure)
    if role is not None and not following:
        hint = (
            "write 'Set ambient to ...' steps in the procedure instead"
            if role == "ambient_temperature"
            else f"add a step 'Follow {role} profile from custom_profile'"
        )
        problems.append(
            (
                TEST_PROCEDURES,
                f"custom_profile names the UUT's {role} but no step of the procedure follows it: {hint}, or leave"
                " test_procedures empty to run the profile as the test",
            )
        )
    for path, step in following:
        where = f"{path} ({step_text(step)})"
        if profile is None:
            continue  # resolution says that custom_profile is missing
        if role is None:
            problems.append(
                (
                    TEST_PROCEDURES,
                    f"{where} follows custom_profile, whose Name {profile.Name[:80]!r} is an FMU port: a procedure"
                    f" follows a profile named by its UUT role ({', '.join(PROFILE_ROLES[:3])})",
                )
            )
        elif step.quantity != role:
            problems.append(
                (TEST_PROCEDURES, f"{where} follows a {step.quantity} profile, but custom_profile.Name is {role!r}")
            )


def _bench_problems(
    chosen: Chosen, ratings: UutRatings, *, test_code: str, standard: str | None, bench: str
) -> list[tuple[str, str]]:
    if chosen.source == "default":
        reason = refusal(test_code, ratings, bench, standard=standard)
        return [("bench", f"test {test_code!r} on a {bench} bench: {reason}")] if reason else []
    if bench.lower() in bench_kinds(chosen.procedure):
        return []
    problems = []
    for path, step in chosen.procedure.walk():
        if isinstance(step, ExternalStep):
            problems.append(
                (
                    "bench",
                    f"{path} ({step_text(step)}) needs {FIXTURES[step.action]}: a virtual bench cannot run it"
                    " unless the Digital Twin's models cover it; request a Physical bench",
                )
            )
    return problems


# --------------------------------------------------------------------------- what the intake checks


def required_roles(procedure: Procedure) -> dict[str, str]:
    """The UUT port roles a Digital Twin's model set must map for ``procedure``, each with why:
    ``current`` and ``voltage`` always; ``temperature`` for temperature terminations;
    ``ambient_temperature`` for ambient steps."""
    roles = {"current": "the procedure drives the UUT's current", "voltage": "the procedure watches its voltage"}
    for path, step in procedure.walk():
        until: Sequence[Termination] = getattr(step, "until", [])
        if "temperature" not in roles and any(t.key.startswith("temperature_") for t in until):
            roles["temperature"] = f"{path} ({step_text(step)}) ends on the UUT's temperature"
        if "ambient_temperature" not in roles and isinstance(step, AmbientStep):
            roles["ambient_temperature"] = f"{path} ({step_text(step)}) sets the ambient temperature"
    return roles


def parse_stored(text: str) -> Procedure:
    """A stored ``ProcedureJson`` back as a :class:`Procedure` (raises ProcedureError)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProcedureError([Problem(message=f"stored procedure is not JSON: {exc}")]) from None
    return parse_json(data)
