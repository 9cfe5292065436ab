"""Domain errors → HTTP answers with one message per offending field (FastAPI's 422 shape)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fastlims.catalog import service as catalog
from fastlims.catalog.procedures import ProcedureUnavailable
from fastlims.requests.service import Forbidden, NotFound, RequestInvalid
from fastlims.requests.states import IllegalTransition


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestInvalid)
    async def _invalid(_: Request, exc: RequestInvalid) -> JSONResponse:
        detail = [{"loc": ["body", p.field], "msg": p.message, "type": "value_error"} for p in exc.problems]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(catalog.NotFound)
    async def _catalog_not_found(_: Request, exc: catalog.NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ProcedureUnavailable)
    async def _no_procedure(_: Request, exc: ProcedureUnavailable) -> JSONResponse:
        detail = [{"loc": list(exc.loc), "msg": exc.message, "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        # Another user's request: the same answer as an unknown one (no existence oracle).
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(IllegalTransition)
    async def _conflict(_: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)
