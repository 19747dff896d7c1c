"""Domain errors, each with the HTTP status it maps to; rendered as ``{"detail": message}``.

PlatformError (500)
├── BadRequest (400)
├── Unauthorized (401)
├── Forbidden (403)
├── NotFound (404)          messages always contain "not found"
├── Conflict (409)
├── PayloadTooLarge (413)
├── Invalid (422)           messages name the field and the fix
└── TooBusy (429)
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class PlatformError(Exception):
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(PlatformError):
    status = 400


class Unauthorized(PlatformError):
    status = 401


class Forbidden(PlatformError):
    status = 403


class NotFound(PlatformError):
    status = 404

    def __init__(self, kind: str, identifier: str, by: str = "id") -> None:
        super().__init__(f"{kind} with {by} '{identifier}' not found")


class Conflict(PlatformError):
    status = 409


class PayloadTooLarge(PlatformError):
    status = 413


class Invalid(PlatformError):
    status = 422


class TooBusy(PlatformError):
    status = 429


class Unavailable(PlatformError):
    """The work was handed to a worker that ended (or ran out of time) before it answered: the
    same request, sent again, gets a new worker."""

    status = 503


def pydantic_problems(prefix: str, error: ValidationError | Any) -> str:
    """``prefix.field: message; …`` for every problem of a pydantic (or FastAPI request)
    validation error; ``prefix`` may be empty."""

    def where(loc: tuple[object, ...]) -> str:
        return ".".join(str(part) for part in (prefix, *loc) if part != "")

    return "; ".join(f"{where(e['loc']) or 'body'}: {_plain(e['msg'])}" for e in error.errors())


def _plain(message: str) -> str:
    """pydantic's message without the prefix it puts before a validator's own words."""
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message
