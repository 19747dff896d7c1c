"""Transport and configuration, as the public ``qcogclient`` does them, on httpx.

Envelope (the real client's rule): the body is parsed as JSON whatever the status code; a top-level
``detail`` makes ``{"error": detail}``, anything else ``{"response": body}``. Where the real client
would raise — no connection, a body that is not JSON — this one returns ``{"error": message}``.

Without any credentials the constructor raises ``ValueError("No API key found. …")``, as the real
client does.

Configuration: the base URL is ``base_url`` or the one ``QCOG_ENV`` names (``DEV``, the default,
is ``http://localhost:8001/api``); requests go to ``{base_url}/v1/{path}``. Credentials, in order:
basic auth when both parts are given, an explicit ``api_key``, ``QCOG_API_KEY`` from the
environment or a ``.env`` file in the working directory, the key saved by ``AdminClient.login``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from dotenv import dotenv_values

API_VERSION = "v1"
BASE_URLS = {
    "DEV": "http://localhost:8001/api",
    "STAGING": "http://localhost:8001/api",
    "PROD": "https://qcog-api.qcog.ai/api",
    "TEST": "http://testserver:50000/api",
}
NO_KEY = "No API key found. Either provide an API key or login first."
DictResponse = dict[str, Any]


def get_base_url() -> str:
    environment = os.environ.get("QCOG_ENV", "DEV")
    if environment not in BASE_URLS:
        raise ValueError(f"Invalid environment: {environment}")
    return BASE_URLS[environment]


def store_path() -> Path:
    return Path.home() / ".qcogclient" / "store.json"


def read_store() -> dict[str, Any]:
    """The local store written by ``AdminClient.login``; disabled when ``QCOG_ENV=TEST``."""
    if os.environ.get("QCOG_ENV") == "TEST" or not store_path().is_file():
        return {}
    try:
        return json.loads(store_path().read_text())
    except (OSError, ValueError):
        return {}


def write_store(values: dict[str, Any]) -> None:
    if os.environ.get("QCOG_ENV") == "TEST":
        return
    store_path().parent.mkdir(parents=True, exist_ok=True)
    store_path().write_text(json.dumps(values))


def resolve_api_key(api_key: str | None) -> str:
    if api_key:
        return api_key
    if key := os.environ.get("QCOG_API_KEY"):
        return key
    if key := dotenv_values(".env").get("QCOG_API_KEY") if Path(".env").is_file() else None:
        return key
    if key := read_store().get("api_key"):
        return str(key)
    raise ValueError(NO_KEY)


@dataclass(frozen=True)
class Credentials:
    """An API key or the admin's basic credentials, as httpx sends them."""

    api_key: str | None = None
    basic: tuple[str, str] | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"x-api-key {self.api_key}"} if self.api_key else {}

    def auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(*self.basic) if self.basic else None


def envelope(response: httpx.Response) -> DictResponse:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()[:200] or "an empty body"
        return {"error": f"HTTP {response.status_code} from {response.request.url}: {text}"}
    if isinstance(body, dict) and "detail" in body:
        return {"error": body["detail"]}
    return {"response": body}


class ClientConnectorError(ConnectionError):
    """The server could not be reached. The real client lets aiohttp's error of this name (an
    ``OSError``) escape; this one is a ``ConnectionError``, so ``except OSError`` catches both."""


def _unreachable(url: str, error: httpx.HTTPError) -> Exception:
    if isinstance(error, httpx.TimeoutException):  # aiohttp: asyncio's TimeoutError
        return TimeoutError(f"No answer from {url} in time: {error}")
    return ClientConnectorError(f"Cannot connect to host {url}: {type(error).__name__}: {error}")


def _trace(response: httpx.Response) -> None:
    """``QCOG_DEBUG=1``: the answer's trace id under the real client's banner, for support."""
    if os.environ.get("QCOG_DEBUG") == "1":
        print("--- SENTRY TRACE ---")
        print(response.headers.get("X-Trace-Id"))


class HttpClient:
    """One httpx client for a base URL and credentials; methods return envelopes. A server that
    cannot be reached raises, as the real client does."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        basic_auth_username: str | None = None,
        basic_auth_password: str | None = None,
        timeout: float = 3000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = (base_url or get_base_url()).rstrip("/")
        self.url = f"{self.base_url}/{API_VERSION}/"
        # As the real client: no credentials at all is a ValueError here, at construction.
        if basic_auth_username and basic_auth_password:
            self.credentials = Credentials(basic=(basic_auth_username, basic_auth_password))
        else:
            self.credentials = Credentials(api_key=resolve_api_key(api_key))
        # Kept, so that a client made from this one (EmulatorClient.from_http) shares it.
        self.transport = transport
        self._client = httpx.AsyncClient(
            headers=self.credentials.headers(),
            auth=self.credentials.auth(),
            timeout=timeout,
            transport=transport,
        )

    async def exec(
        self,
        path: str,
        method: str,
        data: Any = None,
        params: dict[str, Any] | None = None,
    ) -> DictResponse:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.url + path.lstrip("/")
        try:
            response = await self._client.request(method, url, json=data, params=query or None)
        except httpx.HTTPError as error:
            raise _unreachable(url, error) from error
        _trace(response)
        return envelope(response)

    async def upload_file(
        self, path: str, stream: IO[bytes], params: dict[str, Any] | None = None
    ) -> DictResponse:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        url = self.url + path.lstrip("/")
        name = Path(getattr(stream, "name", "file") or "file").name
        try:
            response = await self._client.post(url, params=query, files={"file": (name, stream)})
        except httpx.HTTPError as error:
            raise _unreachable(url, error) from error
        _trace(response)
        return envelope(response)

    async def aclose(self) -> None:
        await self._client.aclose()
