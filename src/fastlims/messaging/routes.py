"""The MQTT contract, served for partners' tooling (no token: it is a public interface spec)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from fastlims.messaging.asyncapi import as_yaml

router = APIRouter(tags=["messaging"])


@router.get("/api/asyncapi.yaml", response_class=Response)
def asyncapi(request: Request) -> Response:
    system = request.app.state.system
    host = f"{system.settings.mqtt_host}:{system.settings.mqtt_port}"
    return Response(as_yaml(system.topics, host), media_type="application/yaml")
