"""Does an upload set fit the request's procedure? The UUT port roles the procedure needs are mapped,
and the request's old-style ``FMU_name/Port`` profile drives no port the procedure drives.

Checked at upload, beside the files' own checks (:mod:`.validation`, :mod:`.ports`), so that a set
that cannot run the request's test is quarantined with its reason and the request fails while
it waits for models, never once it runs. Pure: data in (the ``inter_connection.json`` document,
the roles the procedure needs with why, the profile's name), problems out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastlims.intake.interface import Problem
from fastlims.intake.ports import uut_ports

GUIDE = "see docs/partners-upload.md, 'UUT ports', and docs/procedures.md"


@dataclass(frozen=True)
class PortNeeds:
    """What a request's procedure needs of a model set: ``roles`` (role -> why) and the name of a
    ``custom_profile`` in the ``FMU_name/Port`` form, if the request has one."""

    roles: dict[str, str] = field(default_factory=dict)
    fmu_profile: str | None = None


def procedure_port_problems(file: str, interconnection: object, needs: PortNeeds) -> list[Problem]:
    """Every way ``interconnection`` (the parsed ``inter_connection.json``) fails ``needs``."""
    declared = uut_ports(interconnection) or {}
    problems: list[Problem] = []
    missing = [role for role in needs.roles if role not in declared]
    if missing and not declared:
        needed = ", ".join(missing)
        example = ", ".join(f'"{role}": "FMU_name/Port"' for role in missing)
        problems.append(
            Problem(
                file,
                None,
                f"declares no UUT_ports, and the request's procedure needs the roles {needed} mapped to FMU ports"
                f' ("UUT_ports": {{{example}}}, with "current_sign"): {GUIDE}',
                "port-role",
            )
        )
    else:
        for role in missing:
            problems.append(
                Problem(
                    file,
                    None,
                    f"UUT_ports has no {role!r} role, and the request's procedure needs it: {needs.roles[role]};"
                    f" map it to an FMU port ({GUIDE})",
                    "port-role",
                )
            )
    if needs.fmu_profile is not None:
        owner = next((r for r, reference in declared.items() if reference == needs.fmu_profile), None)
        if owner is not None:
            problems.append(
                Problem(
                    file,
                    needs.fmu_profile,
                    f"the request's custom_profile drives {needs.fmu_profile}, which is UUT_ports.{owner}, a port the"
                    f" procedure drives or watches: the request names the role instead ('Name': '{owner}'), or the"
                    " model set maps the role to another port",
                    "port-driven",
                )
            )
    return problems
