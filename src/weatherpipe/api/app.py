"""The FastAPI application factory: routes, the dashboard, and one error handler."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from weatherpipe import __version__
from weatherpipe.api import dashboard, routes
from weatherpipe.bus.base import Bus
from weatherpipe.config import Settings
from weatherpipe.errors import ApiError, StorageUnavailable
from weatherpipe.storage.repository import Repository


def create_app(
    settings: Settings, repo: Repository | None = None, bus: Bus | None = None
) -> FastAPI:
    """The API over `repo` (built from settings if not given); `bus` is checked by /readyz."""
    app = FastAPI(
        title="weatherpipe",
        version=__version__,
        description="Temperature readings, their analyses and anomalies.",
    )
    app.state.settings = settings
    app.state.repo = repo or Repository.from_url(settings.database_url)
    app.state.bus = bus
    app.include_router(routes.router)
    app.include_router(dashboard.router)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(StorageUnavailable)
    async def storage_down(_request: Request, exc: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'request'}: {err['msg']}"
            for err in exc.errors()
        ]
        return JSONResponse(
            {"detail": "; ".join(problems), "errors": exc.errors()}, status_code=422
        )

    return app
