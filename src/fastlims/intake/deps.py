"""The intake of the running system, for routes (the intake's own, the results download, pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from fastlims.intake.service import Intake


def running_intake(request: Request) -> Intake:
    """``System.intake`` of the system the app was created with."""
    intake: Intake = request.app.state.system.intake
    return intake


IntakeDep = Annotated[Intake, Depends(running_intake)]
