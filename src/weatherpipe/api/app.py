"""The FastAPI application factory: routes, the dashboard, access control, metrics, errors."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from weatherpipe import __version__
from weatherpipe.api import admin, alerts, dashboard, fleet, login, routes, schema, telemetry
from weatherpipe.api.answers import AnswerCache, WritesClearAnswers, pool_size
from weatherpipe.api.timing import RequestTimer
from weatherpipe.bus.base import Bus
from weatherpipe.config import Settings
from weatherpipe.errors import (
    ApiError,
    StorageError,
    StorageUnavailable,
    TooManyRequests,
    Unauthorized,
)
from weatherpipe.metrics import Metrics
from weatherpipe.storage.repository import Repository

STATIC = Path(__file__).with_name("static")


def create_app(
    settings: Settings, repo: Repository, metrics: Metrics, bus: Bus | None = None
) -> FastAPI:
    """The API over `repo`, recording into `metrics`; `bus`, if any, is checked by /readyz.

    The parts are built by weatherpipe.compose (make_api), never here.
    """
    app = FastAPI(
        title="weatherpipe",
        version=__version__,
        docs_url=None,  # served below from the package's own copy of Swagger UI
        redoc_url=None,
        description=(
            "Temperature readings, their analyses and anomalies. When the server has "
            "WEATHERPIPE_API_TOKEN set, send `Authorization: Bearer TOKEN` on every request."
        ),
    )
    app.state.settings = settings
    app.state.repo = repo
    app.state.bus = bus
    app.state.metrics = metrics
    app.state.answers = AnswerCache(settings.api_cache_seconds, pool_size(repo))
    app.include_router(routes.router)
    app.include_router(fleet.router)
    app.include_router(admin.router)
    app.include_router(alerts.router)
    app.include_router(telemetry.router)
    app.include_router(schema.router)
    app.state.telemetry = telemetry.Intake.from_settings(settings, repo)
    app.include_router(dashboard.router)
    app.state.templates = dashboard.templates()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.get("/docs", include_in_schema=False)(_docs)
    _add_error_handlers(app)
    app.add_middleware(WritesClearAnswers, answers=app.state.answers)
    app.add_middleware(RequestTimer, metrics=metrics)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    app.state.api_token = token
    app.include_router(login.router)
    if token:
        app.add_middleware(login.TokenGuard, token=token)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET"],
            allow_headers=["Authorization"],
        )
    return app


async def _docs() -> HTMLResponse:
    """Swagger UI from static/swagger-ui/ (vendored), never from a CDN."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="weatherpipe API",
        swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="/static/swagger-ui/swagger-ui.css",
        swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(StorageUnavailable)
    async def storage_down(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(StorageError)
    async def storage_error(_request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse({"detail": f"database error: {exc}"}, status_code=500)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only the JSON-safe parts: pydantic's context may hold exception objects.
        errors = [
            {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
            for err in exc.errors()
        ]
        problems = [f"{'.'.join(e['loc']) or 'request'}: {e['msg']}" for e in errors]
        return JSONResponse({"detail": "; ".join(problems), "errors": errors}, status_code=422)

