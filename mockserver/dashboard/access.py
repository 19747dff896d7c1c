"""Who may see the dashboard: the operator, as on the rest of the control plane.

A browser signs in with the admin's name and password (the login form) or with the token URL
that ``qcog-mock serve`` prints; either opens a session: a cookie holding a new random session id,
never the token (``HttpOnly``, ``SameSite=Strict``, scoped to the dashboard's path). Signing out
ends the session on the server. Scripts may send the admin key or basic credentials instead, as to
any ``/_emulator`` route. The token and the sessions live as long as the process: a restart signs
every browser out. Failed sign-ins are logged and throttled (``deps.SignInThrottle``). The token
never reaches the access log.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from qcog_mock.mockserver.api.deps import PlatformDep, authenticate, client_address
from qcog_mock.mockserver.api.edge import host_allowed
from qcog_mock.mockserver.errors import Forbidden

logger = logging.getLogger(__name__)

PREFIX = "/_emulator/ui"
COOKIE = "qcog_mock_ui"


class SignInNeeded(Exception):
    """No session and no admin credentials: a page sends the browser to the login form."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def new_token() -> str:
    return secrets.token_urlsafe(32)


def server_token(request: Request) -> str:
    return request.app.state.dashboard_token


def token_matches(request: Request, token: str | None) -> bool:
    expected = server_token(request)
    return token is not None and secrets.compare_digest(token.encode(), expected.encode())


class Sessions:
    """The signed-in browsers' session ids (the newest ``MAX`` of them)."""

    MAX = 1000

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}  # in order of creation
        self._lock = threading.Lock()

    def open(self) -> str:
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._ids[session] = None
            while len(self._ids) > self.MAX:
                del self._ids[next(iter(self._ids))]
        return session

    def valid(self, session: str | None) -> bool:
        with self._lock:
            return session is not None and session in self._ids

    def close(self, session: str | None) -> None:
        with self._lock:
            self._ids.pop(session or "", None)


class RedactToken(logging.Filter):
    """Hides the sign-in token in uvicorn's access log lines (the login URL carries it)."""

    pattern = re.compile(r"(token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._redact(a) for a in record.args)
        return True

    def _redact(self, value: Any) -> Any:
        return self.pattern.sub(r"\1…", value) if isinstance(value, str) else value


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a dashboard path only (never another site)."""
    if value and value.startswith(PREFIX) and not value.startswith("//") and "\\" not in value:
        return value
    return f"{PREFIX}/"


def signed_in(request: Request, target: str | None) -> Response:
    """A redirect to ``target`` (made safe) that sets the session cookie."""
    response = RedirectResponse(safe_next(target), status_code=303)
    session = request.app.state.dashboard_sessions.open()
    response.set_cookie(COOKIE, session, path=PREFIX, httponly=True, samesite="strict")
    return response


async def require_operator(request: Request, platform: PlatformDep) -> None:
    """The session cookie, or an admin's key or basic credentials; else the login form."""
    if request.app.state.dashboard_sessions.valid(request.cookies.get(COOKIE)):
        return
    authorization = request.headers.get("authorization")
    if authorization:
        principal = authenticate(request.app.state, client_address(request), authorization)
        if not principal.admin:
            raise Forbidden("The dashboard needs the admin's credentials.")
        return
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise SignInNeeded(path)


async def same_origin(request: Request) -> None:
    """A state-changing request from a browser must come from the dashboard's own pages: its
    ``Origin`` (or, where a browser leaves it out, its ``Referer``) is this server, under a
    name the server answers to. The cookie is ``SameSite=Strict`` already; the check also
    covers browsers that ignore it. Scripts that send credentials are not browsers: a page
    cannot make a browser send them."""
    if request.headers.get("authorization"):
        return
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        raise Forbidden(
            "A request that changes state must say where it comes from (Origin or Referer); "
            "use the dashboard's own pages, or send the admin's credentials."
        )
    source = urlsplit(origin)
    settings = request.app.state.platform.settings
    if source.netloc != request.headers.get("host") or not host_allowed(
        source.hostname or "", settings
    ):
        raise Forbidden(f"Cross-origin request from {origin} refused.")


OperatorDep = Annotated[None, Depends(require_operator)]
SameOriginDep = Annotated[None, Depends(same_origin)]
