"""The FastAPI application: ``create_app(platform=None, settings=None)``.

State lives in the platform, created here (not in a lifespan, which ``httpx.ASGITransport`` never
runs). Every error is rendered as ``{"detail": "<message>"}``; every response carries the simulated
time in ``X-Qcog-Mock-Time``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qcog_mock import __version__
from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api import admin, catalog, datasets, deployments, emulator, runs
from qcog_mock.mockserver.api.deps import SignInThrottle, StrictJSONResponse
from qcog_mock.mockserver.api.docs import add_offline_docs
from qcog_mock.mockserver.api.edge import BodyLimit, EarlyAuth, HostCheck, InputCheck
from qcog_mock.mockserver.clock import TIME_HEADER, isoformat
from qcog_mock.mockserver.dashboard.pages import add_dashboard, add_dashboard_routes
from qcog_mock.mockserver.errors import PlatformError, pydantic_problems
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings

logger = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
TAGS = (
    "identity",
    "environments",
    "experiments",
    "admin",
    "datasets",
    "experiment runs",
    "deployments",
    "emulator",
)


def with_header(send: Send, name: str, value: Callable[[], str]) -> Send:
    """``send``, adding ``name: value()`` to the response as it starts."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            header = (name.encode(), value().encode())
            message["headers"] = [*message.get("headers", []), header]
        await send(message)

    return sending


class SimulatedTimeHeader:
    """Adds the simulated time to every HTTP response."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, with_header(send, TIME_HEADER, self._now))

    def _now(self) -> str:  # read as the answer starts, after the request's work
        return isoformat(self.platform.clock.now())


TRACE_HEADER = "X-Trace-Id"


class TraceId:
    """A fresh id on every answer, as the platform's (its client prints it under QCOG_DEBUG=1);
    an unexpected error's log line carries it too. Outermost: rejected requests get one (a 500
    leaves by Starlette's error middleware, around this one: ``unexpected`` adds it there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = uuid.uuid4().hex
        scope.setdefault("state", {})["trace_id"] = trace_id
        await self.app(scope, receive, with_header(send, TRACE_HEADER, lambda: trace_id))


# How callers authenticate, declared so that /docs offers Authorize: the key in the platform's
# own header, or the admin's basic credentials (admin routes and the control plane).
SECURITY_SCHEMES = {
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The platform's header, `x-api-key <key>`: in /docs, Authorize with "
        "`x-api-key qcog-mock-api-key` (or the key `serve` printed).",
    },
    "adminBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "The admin's name and password: admin routes and the control plane.",
    },
}


class QcogMockAPI(FastAPI):
    def openapi(self) -> dict[str, Any]:
        cached = self.openapi_schema
        schema = super().openapi()
        if schema is not cached:  # built just now: say how to authenticate
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            schema["security"] = [{"apiKey": []}, {"adminBasic": []}]
        return schema


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def _allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route of this path answers: asked of the routes themselves (included
    routers nest theirs), one method at a time."""
    methods = {
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


@cache
def shared_routes() -> tuple[BaseRoute, ...]:
    """The routes every app of the process serves, built once.

    FastAPI prepares an included router's routes when the app first matches a request (180 to
    280 ms for ours) and keeps that work on the route objects: apps that share them answer
    their first request in about a millisecond. What differs between apps (the platform, the
    dashboard's token and sessions) lives on ``app.state``, which the routes read per request.
    """
    routes = APIRouter(default_response_class=StrictJSONResponse)
    add_offline_docs(routes)
    # Runs first: its GET is the request polled most, and routes are matched in order.
    for router in (runs.router, catalog.router, admin.router, datasets.router, deployments.router):
        routes.include_router(router, prefix=API_PREFIX, responses=schemas.ERROR_RESPONSES)
    routes.include_router(emulator.router, responses=schemas.ERROR_RESPONSES)
    add_dashboard_routes(routes)
    return tuple(routes.routes)


def create_app(platform: Platform | None = None, settings: Settings | None = None) -> FastAPI:
    owned = platform is None  # a platform passed in is closed by whoever made it
    platform = platform or Platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            platform.close()

    app = QcogMockAPI(
        title="qcog-mock",
        version=__version__,
        description=(
            "A local emulator of the Qognitive QCML platform API v1, with real training on a "
            "simulated clock. Routes under /_emulator are the emulator's control plane."
        ),
        lifespan=lifespan,
        default_response_class=StrictJSONResponse,
        # The docs' order, whatever order the routers are matched in.
        openapi_tags=[{"name": tag} for tag in TAGS],
        docs_url=None,  # served from the package by add_offline_docs: no CDN
        redoc_url=None,
    )
    app.state.platform = platform
    app.state.sign_in_throttle = SignInThrottle()  # failed basic and dashboard sign-ins
    app.router.redirect_slashes = False
    app.router.routes.extend(shared_routes())  # after FastAPI's own /openapi.json
    add_dashboard(app)

    @app.exception_handler(PlatformError)
    async def platform_error(request: Request, error: PlatformError) -> JSONResponse:
        return StrictJSONResponse({"detail": error.message}, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = pydantic_problems("", error)
        return StrictJSONResponse({"detail": f"Invalid request: {problems}"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail, headers = error.detail, dict(error.headers or {})
        status = error.status_code
        if status == 400:
            # Only body parsing raises a bare 400 here (the platform's own 400s are
            # PlatformErrors): a body that cannot be parsed is a 422, as malformed JSON is.
            status, detail = 422, f"Invalid request: the body could not be parsed ({detail})."
        if status == 404 and detail == "Not Found":
            detail = f"Route {request.method} {request.url.path} not found"
        if status == 405:
            # Every route of the path counts, not only the first one matched.
            allowed = _allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            detail = f"Method {request.method} not allowed here; use {' or '.join(allowed)}."
        return StrictJSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        trace_id = getattr(request.state, "trace_id", None) or uuid.uuid4().hex
        logger.exception(
            "Unhandled error on %s %s (trace %s)", request.method, request.url.path, trace_id
        )
        # The server then drops the connection: the client is told, not left to find out. This
        # answer leaves by Starlette's outermost middleware, around TraceId: it names its id.
        return StrictJSONResponse(
            {"detail": f"Internal error: {type(error).__name__}: {error}"},
            status_code=500,
            headers={"Connection": "close", TRACE_HEADER: trace_id},
        )

    # The last added runs first: the trace id, the Host, the credentials (before any body is
    # read), the body cap, the time header, the input check.
    app.add_middleware(InputCheck)
    app.add_middleware(SimulatedTimeHeader, platform=platform)
    app.add_middleware(BodyLimit, settings=platform.settings)
    app.add_middleware(EarlyAuth)
    app.add_middleware(HostCheck, settings=platform.settings)
    app.add_middleware(TraceId)
    return app
