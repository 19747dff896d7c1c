"""What every client shares: the ``Initializer`` base, the envelope test, and one error path.

Client methods answer with envelopes, never exceptions. A helper deep inside a method that meets
an error raises ``Failed`` with its envelope; ``enveloped`` methods return that envelope.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

import httpx

from qcog_mock.client._http import DictResponse, HttpClient

P = ParamSpec("P")


class Failed(Exception):
    """Carries an error envelope out of a helper."""

    def __init__(self, result: DictResponse) -> None:
        super().__init__(str(result.get("error")))
        self.result = result


def check(result: DictResponse) -> Any:
    """The response of a successful envelope; ``Failed`` with the envelope otherwise."""
    if is_error(result):
        raise Failed(result)
    return result["response"]


def enveloped(
    method: Callable[P, Awaitable[DictResponse]],
) -> Callable[P, Awaitable[DictResponse]]:
    @functools.wraps(method)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> DictResponse:
        try:
            return await method(*args, **kwargs)
        except Failed as failed:
            return failed.result

    return answer


def is_error(result: DictResponse) -> bool:
    return "error" in result


class Initializer:
    """Holds the HTTP client; every public client derives from it."""

    def __init__(
        self,
        *,
        http_client: HttpClient | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        basic_auth_username: str | None = None,
        basic_auth_password: str | None = None,
        timeout: float = 3000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http_client = http_client or HttpClient(
            base_url=base_url,
            api_key=api_key,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http_client.aclose()

    async def __aenter__(self) -> Initializer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
