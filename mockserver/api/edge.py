"""The edge: what every request passes before a route sees it.

- ``HostCheck`` answers only to the names the server is known by: loopback names, IP
  literals, ``testserver`` (in-process clients) and the operator's ``--host``/``--allowed-host``.
  A DNS-rebinding page reaches a loopback server under the attacker's name, and is refused.
- ``EarlyAuth`` checks the credentials of a request with a body before any of it is read: an
  anonymous caller cannot make the server parse megabytes of JSON.
- ``BodyLimit`` caps the body (uploads have the upload cap, everything else the JSON cap).
- ``InputCheck`` refuses, with a 422 naming the field, input that cannot be stored and read
  back: text that is not Unicode (a lone surrogate such as ``"\\udfff"``, valid JSON but not
  encodable as UTF-8), NUL characters (no path, URL or database text may hold one), and the
  non-standard JSON numbers ``NaN`` and ``Infinity`` (or a literal that overflows to it).
  Nothing a route accepts can then break a later read.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qcog_mock.mockserver.api.deps import authenticate
from qcog_mock.mockserver.errors import PlatformError
from qcog_mock.mockserver.settings import Settings

# What a JSON body must contain for the full check to be worth it: an escaped surrogate or
# NUL, a non-standard constant, or a large exponent. Most bodies have none and pass untouched.
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|Infinity|NaN|[eE][+]?[0-9]{3}")


class BodyLimit:
    """Refuses a request body over its cap: at once when ``Content-Length`` says so, else as
    soon as the streamed bytes pass it. Uploads have the upload cap, everything else the JSON
    cap."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def _limit(self, path: str) -> tuple[int, str]:
        if path.endswith("/datasets/upload"):
            # The multipart envelope around the file is allowed a little room.
            limit = self.settings.max_upload_bytes + 64 * 1024
            return limit, "qcog-mock serve --max-upload-mb raises it"
        return self.settings.max_json_bytes, "qcog-mock serve --max-json-mb raises it"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, hint = self._limit(scope["path"])
        detail = f"The request body is larger than this route's limit of {limit} bytes ({hint})."
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The routes' body parsing lets HTTP errors through.
                    raise StarletteHTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


LOCAL_NAMES = ("localhost", "testserver")


def host_allowed(host: str, settings: Settings) -> bool:
    """Whether ``host`` (a Host header's name, without the port) names this server."""
    host = host.strip("[]").lower().rstrip(".")
    if host in LOCAL_NAMES or host.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    if host in (name.lower() for name in settings.allowed_hosts):
        return True
    try:
        ipaddress.ip_address(host)  # an address, not a name that can be re-pointed
    except ValueError:
        return False
    return True


def host_name(netloc: str) -> str:
    """The name in ``host[:port]`` (IPv6 literals keep their brackets off)."""
    return urlsplit(f"//{netloc}").hostname or ""


class HostCheck:
    """Refuses requests whose ``Host`` is not a name of this server (421, as HTTP says)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if not host_allowed(host_name(host), self.settings):
            detail = (
                f"This server does not answer to the host '{host}'. If clients reach it under "
                "that name, start it with --allowed-host NAME."
            )
            await _refuse(scope, receive, send, 421, detail)
            return
        await self.app(scope, receive, send)


class EarlyAuth:
    """401 for a POST, PUT or PATCH to the API or the control plane without a valid key or the
    admin's credentials, before its body is read (the routes check the rest: project, admin).
    The dashboard's pages have their own session check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("POST", "PUT", "PATCH")
            and _needs_credentials(scope["path"])
        ):
            client = scope.get("client")
            address = client[0] if client else "unknown"
            try:
                authenticate(scope["app"].state, address, Headers(scope=scope).get("authorization"))
            except PlatformError as error:
                await _refuse(scope, receive, send, error.status, error.message)
                return
        await self.app(scope, receive, send)


def _needs_credentials(path: str) -> bool:
    if path.startswith("/_emulator/ui/"):
        return False
    return path.startswith(("/api/v1/", "/_emulator/"))


class InputCheck:
    """Refuses unstorable text and non-finite numbers in JSON bodies and query strings."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _query_problem(scope)
        if problem is None and "json" in Headers(scope=scope).get("content-type", ""):
            try:
                body = await _whole_body(receive)
            except StarletteHTTPException as error:  # over the cap, from BodyLimit
                await _refuse(scope, receive, send, error.status_code, str(error.detail))
                return
            problem = _body_problem(body) if _SUSPECT.search(body) else None
            receive = _replay(body, receive)
        if problem is not None:
            await _refuse(scope, receive, send, 422, f"Invalid request: {problem}")
            return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # a disconnect, later

    return replayed


def _query_problem(scope: Scope) -> str | None:
    if b"%00" not in scope.get("query_string", b"") and "\x00" not in scope["path"]:
        return None
    if "\x00" in scope["path"]:
        return "path: contains a NUL character (%00); remove it."
    query = scope["query_string"].decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name + value:
            return f"{name}: contains a NUL character (%00); remove it."
    return None


def _body_problem(body: bytes) -> str | None:
    try:
        value = json.loads(body)  # Python's parser reads NaN and Infinity: found below
    except ValueError:
        return None  # not JSON at all: the route says so, naming the position
    return _value_problem(value, ())


def _value_problem(value: Any, where: tuple[str, ...]) -> str | None:
    """The first value (or key) that cannot be stored, named by its path."""
    if isinstance(value, str):
        return _string_problem(value, where)
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"{'.'.join(where) or 'body'}: {json.dumps(value)} is not a JSON number; send a "
            "finite number (JSON has no NaN or Infinity)."
        )
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if (problem := _string_problem(key, (*where, key))) is not None:
                return problem
            items.append((key, item))
    elif isinstance(value, list):
        items = [(str(i), item) for i, item in enumerate(value)]
    for key, item in items:
        if (problem := _value_problem(item, (*where, key))) is not None:
            return problem
    return None


def _string_problem(text: str, where: tuple[str, ...]) -> str | None:
    field = ".".join(where) or "body"
    if "\x00" in text:
        return f"{field}: contains a NUL character (\\u0000); remove it."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        character = text[error.start]
        return (
            f"{field}: contains {character!a}, a lone surrogate that is not Unicode text; "
            "send the text as UTF-8 (surrogates only in pairs)."
        )
    return None


# Below HTTP: connections that never finish a request ------------------------------------------

HEADER_SECONDS = 10.0  # from a connection's start, or its last answer, to a request's head


def with_header_timeout(base: type[Any], seconds: float = HEADER_SECONDS) -> type[Any]:
    """uvicorn's HTTP protocol ``base`` (httptools' or h11's), closing a connection that has not
    sent a request's head within ``seconds`` of opening or of its last answer. uvicorn has no
    such timeout: a client that opens connections and trickles (slowloris) holds them for ever."""

    class HeaderTimeout(base):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._waiting_since = self.cycle  # the head of the next request changes it
            self._guard = self.loop.call_later(seconds, self._expire)

        def _expire(self) -> None:
            if self.cycle is self._waiting_since and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not self._waiting_since:
                self._guard.cancel()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._guard.cancel()
            self._waiting_since = self.cycle
            self._guard = self.loop.call_later(seconds, self._expire)

        def connection_lost(self, exc: Exception | None) -> None:
            self._guard.cancel()
            super().connection_lost(exc)

    return HeaderTimeout


def http_protocol(seconds: float = HEADER_SECONDS) -> type[Any]:
    """The HTTP protocol uvicorn would pick (httptools when installed), with a header timeout."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return with_header_timeout(AutoHTTPProtocol, seconds)
