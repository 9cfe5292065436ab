"""Message shapes of the intake: ``inter_connection.json`` (its JSON Schema is generated from
:class:`InterConnection`) and the API's answers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fastlims.intake.ports import MAX_REFERENCE_LENGTH, PORT_REFERENCE, ROLES
from fastlims.messaging.variables import SignalConnection

PortReference = Annotated[str, Field(pattern=PORT_REFERENCE.pattern, max_length=MAX_REFERENCE_LENGTH)]
# Examples in the schema: the reference Digital Twin's ports (fastlims.peers.digital_twin); it has no power input.
_EXAMPLES = {
    "current": "Cycler/current_setpoint",
    "voltage": "Cell/V",
    "temperature": "Cell/T",
    "soc": "Cell/SOC",
    "power": "Load/P_setpoint",
    "ambient_temperature": "Cell/T_ambient_K",
}


def _role(name: str, required: bool = False) -> Any:
    return Field(... if required else None, description=ROLES[name].description, examples=[_EXAMPLES[name]])


class UutPorts(BaseModel):
    """Which FMU port plays each role of the unit under test, as FMU_name/Port. At upload each
    port must exist, have the role's causality, not be driven by a connection (inputs) and have a
    compatible unit; null means the role is not mapped."""

    model_config = ConfigDict(extra="forbid", title="UUT_ports")

    current: PortReference = _role("current", required=True)
    voltage: PortReference = _role("voltage", required=True)
    temperature: PortReference | None = _role("temperature")
    soc: PortReference | None = _role("soc")
    power: PortReference | None = _role("power")
    ambient_temperature: PortReference | None = _role("ambient_temperature")


class InterConnection(BaseModel):
    """``inter_connection.json``: the seed's Figure 2 ``FMU_signal_connections`` list, and the
    UUT's port roles.

    ``InSignalReference`` and ``OutSignalReference`` are ``FMU_name/Port``, where ``FMU_name`` is
    the FMU's file name without ``.fmu`` and ``Port`` a variable of that FMU. ``UUT_ports`` maps
    the unit under test's roles to such ports; a battery procedure needs it (current and voltage
    at least). Other top-level members (a description, a version) are allowed and ignored.
    """

    model_config = ConfigDict(
        extra="allow",
        title="inter_connection.json",
        json_schema_extra={"dependentRequired": {"UUT_ports": ["current_sign"]}},
    )

    FMU_signal_connections: list[SignalConnection] = Field(
        max_length=10_000, description="Each connection drives one input from one output"
    )
    UUT_ports: UutPorts | None = Field(
        default=None,
        description="The unit under test's ports by role (FMU_name/Port). Needed for battery procedures:"
        " the procedure drives current (or power) and watches voltage, temperature and soc."
        " Requires current_sign.",
    )
    current_sign: Literal["charge_positive", "discharge_positive"] | None = Field(
        default=None,
        description="How the current (and power) port counts: charge_positive (charging current is"
        " positive, the Battery Data Format convention FastLIMS uses) or discharge_positive."
        " Required with UUT_ports.",
    )


def interconnection_json_schema() -> dict[str, Any]:
    return InterConnection.model_json_schema()


class ProblemOut(BaseModel):
    file: str
    variable: str | None
    message: str
    code: str


class UploadOutcome(BaseModel):
    """What happened to one upload event (the API's answer to a PUT or an Event Grid event)."""

    path: str
    outcome: str = Field(
        description="ignored | gone | duplicate | waiting | accepted | quarantined | unauthorized | not-processed"
    )
    test_UUID: str | None = None
    detail: str = ""
    status: str | None = Field(default=None, description="the request's status after the event")
    missing: list[str] = Field(default_factory=list)
    problems: list[ProblemOut] = Field(default_factory=list)


class WebhookAnswer(BaseModel):
    received: int
    outcomes: list[UploadOutcome]
