"""A manual clock that nothing advances: how a test against an in-process emulator hangs.

Code that submits a run and polls ``get_experiment_run`` until it is done waits for ever on a
``manual`` clock that the test never advances: nothing is due until time moves. ``StallWatch``
wraps the in-process transport and turns that wait into a failure that names the fix: once a
run has been polled in ``pending`` or ``running`` for ``seconds`` of wall time (and at least
``MIN_POLLS`` times) with the clock unmoved, and nothing else was asked of the emulator
meanwhile, the poll raises ``ClockStalled``. Any other request, a clock call or time moving
starts the count again, so a test that drives the clock never meets it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx

from qcog_mock.mockserver.clock import monotonic

if TYPE_CHECKING:
    from qcog_mock.mockserver.platform import Platform

MIN_POLLS = 3
UNFINISHED = ("pending", "running")


class ClockStalled(AssertionError):
    """A run polled on a manual clock that nothing advances: it can never finish."""


class StallWatch(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, backend: Platform, seconds: float) -> None:
        self.inner, self.backend, self.seconds = inner, backend, seconds
        self._restart()

    def _restart(self) -> None:
        self._since = monotonic()
        self._time = self.backend.clock.now()
        self._polls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if not self._polls_a_run_on_a_manual_clock(request, response):
            self._restart()
            return response
        body = await response.aread()
        status = _run_status(body)
        if status not in UNFINISHED or self.backend.clock.now() != self._time:
            self._restart()
        else:
            self._polls += 1
            waited = monotonic() - self._since
            if self._polls >= MIN_POLLS and waited >= self.seconds:
                self._restart()
                raise ClockStalled(_message(request, status, waited, self._polls))
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    def _polls_a_run_on_a_manual_clock(
        self, request: httpx.Request, response: httpx.Response
    ) -> bool:
        return (
            request.method == "GET"
            and "experiment_run" in request.url.path
            and response.status_code == 200
            and self.backend.clock.mode == "manual"
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _run_status(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    status = answer.get("status") if isinstance(answer, dict) else None
    return status if isinstance(status, str) else None


def _message(request: httpx.Request, status: str | None, waited: float, polls: int) -> str:
    return (
        f"qcog-mock: the clock is manual and nothing advanced it for {waited:.0f} s while "
        f"{request.url.path} was polled {polls} times, still '{status}': on a manual clock a "
        "run moves only when the test moves time. Advance it (await qcog_clock.advance("
        "seconds=...) or settle()), or use the auto clock, the fixtures' default (drop "
        "clock='manual' from @pytest.mark.qcog)."
    )
