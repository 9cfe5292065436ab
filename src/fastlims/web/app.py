"""The ASGI application: API routers, pages, static assets, sessions and error handlers."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from fastlims import __version__
from fastlims.benches.registry_routes import router as benches_router
from fastlims.catalog.routes import router as catalog_router
from fastlims.catalog.routes import schemas_router as catalog_schemas_router
from fastlims.intake.routes import router as intake_router
from fastlims.messaging.routes import router as messaging_router
from fastlims.requests.routes import router as requests_router
from fastlims.runs.routes import router as results_router
from fastlims.system import System
from fastlims.users.routes import router as users_router
from fastlims.users.throttle import LoginThrottle, ThrottlePolicy
from fastlims.web import account, bench_pages, errors, limits, observability, pages
from fastlims.web.deps import LoginRequired

STATIC_DIR = Path(__file__).with_name("static")


def create_app(system: System) -> FastAPI:
    app = FastAPI(
        title="FastLIMS",
        version=__version__,
        description="LIMS for hybrid battery testing with a Digital Twin. Every /api/v1 endpoint needs "
        "'Authorization: Bearer <token>' (create one with `fastlims tokens create USER`).",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.system = system
    if system.web_metrics is None:
        system.web_metrics = observability.Metrics(system)
    metrics = system.web_metrics
    app.state.metrics = metrics

    settings = system.settings
    if system.login_throttle is None:
        system.login_throttle = LoginThrottle(
            ThrottlePolicy(
                max_failures=settings.login_max_failures,
                max_failures_per_address=settings.login_max_failures_per_address,
                lockout_s=settings.login_lockout_s,
            )
        )

    # The last added runs first: cookies marked Secure > session > access log > body limit > routes.
    app.add_middleware(limits.BodyLimitMiddleware, settings=settings)
    app.add_middleware(observability.AccessLogMiddleware, metrics=metrics)
    app.add_middleware(
        SessionMiddleware,
        secret_key=system.secret_key,
        session_cookie="fastlims_session",
        # Idle lifetime: the signed cookie is re-issued at each response and refused (server side,
        # by its signature's time) once older than this; the absolute one is checked in web.deps.
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(limits.SecureCookieMiddleware)
    errors.install(app)

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)

    app.include_router(catalog_router)
    app.include_router(catalog_schemas_router)
    app.include_router(requests_router)
    app.include_router(users_router)
    app.include_router(messaging_router)
    app.include_router(intake_router)
    app.include_router(results_router)
    app.include_router(benches_router)
    app.include_router(observability.router(system, metrics))
    app.include_router(pages.router)
    app.include_router(bench_pages.router)
    app.include_router(account.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
