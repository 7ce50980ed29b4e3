"""Access control: a bearer token for the API, a login form and an HttpOnly cookie for the pages.

The token never travels in a URL (URLs end up in access logs and browser history): the
dashboard's form POSTs it once, and the answer sets a cookie the browser sends from then on.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_COOKIE = "weatherpipe_token"
LOGIN_PATH = "/login"
# Liveness probes must not need the secret; /healthz says nothing about the data. Devices
# post telemetry with their own tokens (api/telemetry.py checks them); the schema is public.
OPEN_PATHS = frozenset({"/healthz", LOGIN_PATH, "/api/v1/telemetry", "/api/v1/schema/reading.json"})
MAX_FORM_BYTES = 4096

router = APIRouter()


def presented_token(request: Request) -> str | None:
    """The token a request carries: a bearer header, or the dashboard's cookie."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE)


def _matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def login_page(request: Request, problem: str = "", status_code: int = 200) -> HTMLResponse:
    """templates/login.html, with a problem to show (or none)."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "login.html", {"problem": problem}, status_code=status_code
    )


@router.get(LOGIN_PATH, include_in_schema=False)
async def login_form(request: Request) -> HTMLResponse:
    return login_page(request)


@router.post(LOGIN_PATH, include_in_schema=False)
async def login(request: Request) -> Response:
    """Check the form's token; on success set the cookie and go to the dashboard."""
    expected: str | None = request.app.state.api_token
    body = await request.body()
    fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    given = fields["token"][0] if fields.get("token") else None
    if expected is None:
        return RedirectResponse("/", status_code=303)
    if not _matches(given, expected):
        return login_page(request, "Wrong token.", status_code=401)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        expected,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


class TokenGuard:
    """Every path but /healthz and /login needs the token; the home page offers the form.

    Plain ASGI middleware (see api/timing.py for why not `app.middleware("http")`).
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if (
            request.url.path in OPEN_PATHS
            or request.method == "OPTIONS"
            or _matches(presented_token(request), self.token)
        ):
            await self.app(scope, receive, send)
            return
        await _refusal(request)(scope, receive, send)


def _refusal(request: Request) -> Response:
    if request.url.path == "/" and request.method == "GET":
        page = login_page(request, status_code=401)
        page.headers["WWW-Authenticate"] = "Bearer"
        return page
    return JSONResponse(
        {"detail": "missing or wrong token: send Authorization: Bearer TOKEN"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )
