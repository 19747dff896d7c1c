"""Dependencies shared by the routers, and the client's lenient query-value spellings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from qcog_mock.mockserver import jsontext
from qcog_mock.mockserver.errors import Forbidden, Invalid
from qcog_mock.mockserver.platform import Platform, Principal

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


async def get_principal(
    platform: PlatformDep,
    authorization: AuthorizationHeader = None,
) -> Principal:
    return platform.identity.authenticate(authorization)


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
    identity = request.app.state.platform.identity
    identity.authenticate(authorization).require_project(pid)
    return identity.get_project(pid)["id"]


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
