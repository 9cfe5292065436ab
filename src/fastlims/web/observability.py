"""Health, Prometheus metrics and an access log that never prints query strings or headers."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text
from starlette.middleware.base import BaseHTTPMiddleware

from fastlims.requests import service as requests_service
from fastlims.system import System
from fastlims.users import service as users
from fastlims.users.models import Role

log = logging.getLogger("fastlims.access")


class RequestStatusCollector:
    """Reads request counts per status at scrape time, so the gauge is never stale."""

    def __init__(self, system: System) -> None:
        self.system = system

    def collect(self):  # type: ignore[no-untyped-def]
        gauge = GaugeMetricFamily("fastlims_test_requests", "Test requests by lifecycle status", labels=["status"])
        try:
            with self.system.database.transaction() as session:
                counts = requests_service.counts_by_status(session=session)
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("metrics: database unavailable")
            return
        for status, number in counts.items():
            gauge.add_metric([status.name], number)
        yield gauge


class Metrics:
    def __init__(self, system: System) -> None:
        self.registry = system.metrics_registry
        self.http_requests = Counter(
            "fastlims_http_requests_total",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "fastlims_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(RequestStatusCollector(system))  # type: ignore[arg-type]


class AccessLogMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, metrics: Metrics) -> None:  # type: ignore[no-untyped-def]
        super().__init__(app)
        self.metrics = metrics

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            elapsed = time.perf_counter() - started
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.http_requests.labels(request.method, template, str(status)).inc()
            self.metrics.http_latency.labels(request.method, template).observe(elapsed)
            log.info(
                "http",
                extra={
                    "method": request.method,
                    "path": request.url.path,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                    "user": getattr(request.state, "user", None),
                },
            )


def _metrics_allowed(system: System, request: Request) -> bool:
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer "):
        return False
    offered = authorization[7:].strip()
    token = system.settings.metrics_token
    if token is not None and hmac.compare_digest(offered.encode(), token.get_secret_value().encode()):
        return True
    with system.database.transaction() as session:
        user = users.user_for_token(session=session, token=offered)
        return user is not None and user.can(Role.lab_manager)


def router(system: System, metrics: Metrics) -> APIRouter:
    routes = APIRouter(tags=["operations"])

    @routes.get("/healthz")
    def healthz() -> Response:
        try:
            with system.database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            return Response(
                f'{{"status":"unhealthy","database":"{type(exc).__name__}"}}',
                status_code=503,
                media_type="application/json",
            )
        return Response('{"status":"ok","database":"ok"}', media_type="application/json")

    @routes.get("/metrics")
    def prometheus(request: Request) -> Response:
        """Prometheus scrape. Not public unless FASTLIMS_METRICS_PUBLIC: the scraper sends
        FASTLIMS_METRICS_TOKEN (or a lab manager's or admin's API token) as a bearer token."""
        if not system.settings.metrics_public and not _metrics_allowed(system, request):
            detail = (
                "/metrics needs 'Authorization: Bearer <token>' with FASTLIMS_METRICS_TOKEN or a lab manager's"
                " API token (or FASTLIMS_METRICS_PUBLIC=true)"
            )
            return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return routes
