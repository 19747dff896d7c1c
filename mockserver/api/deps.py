"""Dependencies shared by the routers, and the client's lenient query-value spellings."""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from qcog_mock.mockserver import jsontext
from qcog_mock.mockserver.clock import monotonic
from qcog_mock.mockserver.errors import Forbidden, Invalid, TooBusy, Unauthorized
from qcog_mock.mockserver.platform import Platform, Principal

logger = logging.getLogger(__name__)
_NONE = ("", "none", "null")


class StrictJSONResponse(JSONResponse):
    """Every JSON answer: strict whatever is stored, non-finite numbers as ``null``."""

    def render(self, content: Any) -> bytes:
        return jsontext.dumps(content, separators=(",", ":")).encode("utf-8")


# The dependencies are async: they are quick lookups, and a sync dependency would cost every
# request a hop through the thread pool. The handlers stay sync and run in the pool.
async def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]
AuthorizationHeader = Annotated[str | None, Header(description="x-api-key <key>, or Basic")]


MAX_FAILURES = 10  # failed sign-ins per address per minute


class SignInThrottle:
    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """``TooBusy`` while ``address`` has failed ``MAX_FAILURES`` times in the last minute."""
        with self._lock:
            recent = self._recent(address)
            if len(recent) >= MAX_FAILURES:
                wait = int(60 - (monotonic() - recent[0])) + 1
                raise TooBusy(f"Too many failed sign-ins from {address}; try again in {wait} s.")

    def failed(self, address: str, username: str) -> None:
        logger.warning("Failed sign-in as %r from %s", username, address)
        with self._lock:
            self._recent(address).append(monotonic())

    def _recent(self, address: str) -> deque[float]:
        recent = self._failures.setdefault(address, deque())
        while recent and monotonic() - recent[0] > 60:
            recent.popleft()
        return recent


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authenticate(state: Any, address: str, authorization: str | None) -> Principal:
    """The caller's principal; wrong basic credentials (a password to guess, unlike keys) are
    logged and throttled per address."""
    basic = (authorization or "").lstrip()[:6].lower() == "basic "
    if basic:
        state.sign_in_throttle.check(address)
    try:
        return state.platform.identity.authenticate(authorization)
    except Unauthorized:
        if basic:
            state.sign_in_throttle.failed(address, "(basic credentials)")
        raise


async def get_principal(request: Request, authorization: AuthorizationHeader = None) -> Principal:
    return authenticate(request.app.state, client_address(request), authorization)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.admin:
        raise Forbidden("This operation needs an admin key or the admin's basic credentials.")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


async def project_id(
    pid: str,
    request: Request,
    authorization: AuthorizationHeader = None,
) -> str:
    """The path's project id, checked to exist and to be open to the caller's key.

    Flat (no sub-dependencies) on purpose: every project route, the polled ``GET`` run among
    them, pays for each dependency FastAPI solves."""
    state = request.app.state
    authenticate(state, client_address(request), authorization).require_project(pid)
    return state.platform.identity.get_project(pid).id


ProjectIdDep = Annotated[str, Depends(project_id)]


def optional(value: str | None) -> str | None:
    """Absent, empty, "None" and "null" all mean no value (the client sends ``str(None)``)."""
    return None if value is None or value.strip().lower() in _NONE else value


def flag(name: str, value: str | None, default: bool) -> bool:
    value = optional(value)
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise Invalid(f"{name}: '{value}' is not a boolean; use true or false.")


def number(name: str, value: str | int | None, default: int) -> int:
    value = optional(value) if isinstance(value, str) else value
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"{name}: '{value}' is not an integer.") from None
