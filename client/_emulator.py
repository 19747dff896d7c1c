"""Extensions beyond the platform's API, for code that knows it talks to qcog-mock.

    QcogMockError
    ├── EmulatorError      a call failed (status code and detail attached; status 0: unreachable)
    └── RunWaitError       a run could not be awaited (lookup failed, no progress possible, timeout)

Unlike the compatible clients, these return plain values and raise on failure. The
``qcog-mock`` console commands are built on ``EmulatorClient``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import httpx

from qcog_mock.client._base import Initializer, is_error
from qcog_mock.client._http import Credentials, envelope, get_base_url, resolve_api_key

TERMINAL = ("completed", "failed")
# Every emulator response carries the simulated time in this header.
TIME_HEADER = "X-Qcog-Mock-Time"


SETTLE_SLICE = 0.25  # wall seconds


class QcogMockError(Exception):
    pass


class EmulatorError(QcogMockError):
    """``status`` is the answer's code, 0 when the server could not be reached."""

    def __init__(self, status: int, detail: Any, call: str = "") -> None:
        super().__init__(f"{call} answered {status}: {detail}" if status else str(detail))
        self.status = status
        self.detail = detail


class RunWaitError(QcogMockError):
    pass


class EmulatorClient:
    """The emulator's control plane (clock, reset, events, webhook deliveries), and the key's
    own runs as plain values, for code and tools that watch a server."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 3000,
        on_time: Callable[[str], None] | None = None,
        api_key: str | None = None,
        basic_auth_username: str | None = None,
        basic_auth_password: str | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        """The control plane answers its operator only: an admin API key (``api_key``, else
        ``QCOG_API_KEY`` as for the other clients) or the admin's basic credentials.
        ``on_time`` is called with the simulated time (ISO) after every call."""
        if credentials is None and basic_auth_username and basic_auth_password:
            credentials = Credentials(basic=(basic_auth_username, basic_auth_password))
        elif credentials is None:
            try:
                credentials = Credentials(api_key=resolve_api_key(api_key))
            except ValueError:
                credentials = Credentials()  # the server's 401 will say what is missing
        root = (base_url or get_base_url()).rstrip("/").removesuffix("/api")
        self.url = root
        self._client = httpx.AsyncClient(
            base_url=root,
            transport=transport,
            timeout=timeout,
            headers=credentials.headers(),
            auth=credentials.auth(),
        )
        self._on_time = on_time

    @classmethod
    def for_client(cls, client: Initializer) -> EmulatorClient:
        """Talk to the emulator behind an API client (same server, same transport)."""
        http = client.http_client
        return cls(http.base_url, transport=http.transport, credentials=http.credentials)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._request(method, path, **kwargs)
        result = envelope(response)  # the one error path of every client
        if response.status_code >= 400 or is_error(result):
            raise EmulatorError(response.status_code, result.get("error"), f"{method} {path}")
        return result["response"]

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise EmulatorError(
                0, f"cannot reach {self.url} ({type(error).__name__}); is qcog-mock serve running?"
            ) from None
        if self._on_time is not None and (now := response.headers.get(TIME_HEADER)):
            self._on_time(now)
        return response

    async def save_state(self, destination: str | Path) -> Path:
        """The server's whole state as one archive at ``destination`` (written whole or not
        at all): what ``serve --state`` and the pytest marker's ``state=`` start from."""
        response = await self._request("GET", "/_emulator/state")
        if response.status_code >= 400:
            result = envelope(response)
            raise EmulatorError(response.status_code, result.get("error"), "GET /_emulator/state")
        destination = Path(destination)
        partial = destination.with_name(f".{destination.name}.partial")
        partial.unlink(missing_ok=True)
        partial.touch(mode=0o600)  # key digests and the webhook secret: the owner's alone
        partial.write_bytes(response.content)
        partial.replace(destination)
        return destination

    async def available(self) -> bool:
        """Whether the server has the control plane (a real platform does not)."""
        try:
            await self.clock()
        except EmulatorError:
            return False
        return True

    async def clock(self) -> dict[str, Any]:
        return await self._call("GET", "/_emulator/clock")

    async def advance(self, seconds: float | None = None, to: str | None = None) -> dict[str, Any]:
        body = {"seconds": seconds} if to is None else {"to": to}
        return await self._call("POST", "/_emulator/clock/advance", json=body)

    async def settle(self, timeout: float = 600) -> dict[str, Any]:
        return await self._call("POST", "/_emulator/clock/settle", params={"timeout": timeout})

    async def set_mode(
        self, mode: Literal["auto", "manual", "realtime"], speed: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": mode}
        if speed is not None:
            body["speed"] = speed
        return await self._call("PUT", "/_emulator/clock", json=body)

    async def reset(self) -> dict[str, Any]:
        return await self._call("POST", "/_emulator/reset")

    async def events(self, run_id: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"after": after}
        if run_id is not None:
            params["run_id"] = run_id
        return await self._call("GET", "/_emulator/events", params=params)

    async def deliveries(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Webhook deliveries with their attempts, oldest first."""
        params = {"run_id": run_id} if run_id is not None else {}
        return await self._call("GET", "/_emulator/webhooks/deliveries", params=params)

    async def runs(self) -> list[dict[str, Any]]:
        """The runs of the key's project, oldest first."""
        return await self._call("GET", f"{await self._project()}/experiment_runs",
                                params={"descending": "false"})  # fmt: skip

    async def run(self, name: str) -> dict[str, Any]:
        """One run of the key's project, by name."""
        path = f"{await self._project()}/experiment_runs/{name}"
        return await self._call("GET", path, params={"identifier": "name"})

    async def _project(self) -> str:
        project = (await self._call("GET", "/api/v1/whoami"))["project_id"]
        if not project:
            raise EmulatorError(0, "this key belongs to no project; use a project's key")
        return f"/api/v1/projects/{project}"

    async def advance_until(
        self,
        done: Callable[[], Awaitable[bool]],
        *,
        timeout: float = 600.0,
        poll_interval: float = 60.0,
    ) -> None:
        """Move simulated time on, in the way the clock's mode allows, until ``done()``.

        ``auto``: wait for the server to go as far as it can; ``manual``: advance event by
        event; ``realtime``: poll. Against a server without the control plane (the platform),
        poll every ``poll_interval`` wall seconds. ``timeout`` bounds the wall time spent.
        Raises ``RunWaitError`` when the timeout passes or nothing can move time on.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        simulated = await self.available()
        last: tuple[Any, Any] | None = None
        while not await done():
            if loop.time() > deadline:
                raise RunWaitError(f"not done after {timeout} s")
            if not simulated:
                await asyncio.sleep(poll_interval)
                continue
            clock = await self.clock()
            if clock["mode"] == "auto":
                # A settle waits for every run and delivery of the server, others' included;
                # in short slices, ``done`` is asked again as soon as it may have changed.
                await self.settle(timeout=SETTLE_SLICE)
            elif clock["mode"] == "manual":
                if clock["next_event_at"] is None:
                    raise RunWaitError(
                        f"nothing is scheduled on the manual clock at {clock['now']}"
                    )
                state = (clock["now"], clock["next_event_at"])
                if state == last:
                    raise RunWaitError(f"the clock makes no progress at {clock['now']}")
                last = state
                await self.advance(to=clock["next_event_at"])
            else:
                await asyncio.sleep(min(1.0, poll_interval / clock["speed"]))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def wait_for_run(
    client: Any,
    run_name: str | None = None,
    *,
    poll_interval: float = 60.0,
    timeout: float = 600.0,
    emulator: EmulatorClient | None = None,
) -> dict[str, Any]:
    """The run once it is ``completed`` or ``failed``, moving time on as
    ``EmulatorClient.advance_until`` does (against another server: polling every
    ``poll_interval`` wall seconds). ``timeout`` bounds the wall time spent here."""
    own = emulator is None
    emulator = emulator or EmulatorClient.for_client(client)
    run: dict[str, Any] = {}

    async def finished() -> bool:
        nonlocal run
        result = await client.get_experiment_run(run_name)
        if is_error(result):
            raise RunWaitError(f"Could not read the run: {result['error']}")
        run = result["response"]
        return run["status"] in TERMINAL

    try:
        await emulator.advance_until(finished, timeout=timeout, poll_interval=poll_interval)
    except RunWaitError as error:
        if not run:
            raise
        raise RunWaitError(f"Run '{run['name']}' is {run['status']}: {error}") from None
    finally:
        if own:
            await emulator.aclose()
    return run
