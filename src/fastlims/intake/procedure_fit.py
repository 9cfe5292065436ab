"""Does an upload set fit the request's procedure? What the procedure needs of the set's port roles."""

from __future__ import annotations

import json
from pathlib import Path

from fastlims.intake import layout
from fastlims.intake.procedure_ports import PortNeeds, procedure_port_problems
from fastlims.intake.validation import Problem
from fastlims.procedures.model import ProcedureError
from fastlims.requests import procedures as request_procedures
from fastlims.requests import service as requests
from fastlims.requests.models import TestRequest


def port_needs(request: TestRequest) -> PortNeeds:
    """What the request's procedure needs of a model set (nothing for a request without one)."""
    try:
        procedure = requests.procedure_of(request)
    except ProcedureError:
        procedure = None  # the pipeline fails such a request with the reason; the models are not at fault
    if procedure is None:
        return PortNeeds()
    profile = (requests.variables_of(request) or {}).get("custom_profile")
    name = profile.get("Name") if isinstance(profile, dict) else None
    fmu_profile = name if isinstance(name, str) and name not in request_procedures.PROFILE_ROLES else None
    return PortNeeds(request_procedures.required_roles(procedure), fmu_profile)


def procedure_problems(path: Path, needs: PortNeeds) -> list[Problem]:
    """The set against the request's procedure; an unreadable document is the validation's to report."""
    if not needs.roles and needs.fmu_profile is None:
        return []
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return []
    return procedure_port_problems(layout.INTERCONNECTION, document, needs)
