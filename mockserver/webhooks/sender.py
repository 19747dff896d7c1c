"""Webhook POSTs, off the simulation kernel.

The kernel decides when a delivery is due (on the simulated clock) and hands it here. Each
endpoint URL has its own lane, sent in the order handed over; each POST has a total deadline
(connect, send, headers and the answer together); of a failed answer only the first bytes are
read. A receiver that is slow, silent or trickling delays its own lane — never the clock, and
never another tenant's runs or webhooks.

The sends run on one asyncio loop in a thread of their own, where a deadline cancels cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported at the first delivery: serve starts without it
    import httpx

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Post:
    url: str
    body: str
    headers: dict[str, str]
    copies: int = 1  # a duplicate fault sends a message that succeeded once more


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    ok: bool


class Sender:
    def __init__(self, deadline: float, snippet: int, user_agent: str) -> None:
        self.deadline = deadline
        self.snippet = snippet
        self.user_agent = user_agent
        self._cond = threading.Condition()
        self._pending = 0  # handed over and not yet reported
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Touched on the loop only:
        self._lanes: dict[str, asyncio.Queue[tuple[Post, Callable[[Outcome], None]]]] = {}
        self._client: httpx.AsyncClient | None = None

    def send(self, post: Post, done: Callable[[Outcome], None]) -> None:
        """Queue ``post`` on its URL's lane; ``done(outcome)`` is called from the sender's
        thread once it is over. After ``close`` nothing is sent (the delivery stays pending in
        the outbox, and a restart sends it)."""
        with self._cond:
            if self._closed:
                return
            loop = self._start()
            self._pending += 1
        loop.call_soon_threadsafe(self._enqueue, post, done)

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything handed over has been reported; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0 or self._closed, timeout)

    def busy(self) -> bool:
        with self._cond:
            return self._pending > 0 and not self._closed

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._cond.notify_all()
        if loop is None or thread is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop has already ended
            loop.call_soon_threadsafe(lambda: loop.create_task(self._shutdown()))
        thread.join(timeout)

    # The loop's side ------------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._serve, args=(self._loop,), name="qcog-mock webhooks", daemon=True
            )
            self._thread.start()
        return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _enqueue(self, post: Post, done: Callable[[Outcome], None]) -> None:
        lane = self._lanes.get(post.url)
        if lane is None:
            lane = self._lanes[post.url] = asyncio.Queue()
            asyncio.get_running_loop().create_task(self._run_lane(post.url, lane))
        lane.put_nowait((post, done))

    async def _run_lane(
        self, url: str, lane: asyncio.Queue[tuple[Post, Callable[[Outcome], None]]]
    ) -> None:
        while True:
            try:
                post, done = lane.get_nowait()
            except asyncio.QueueEmpty:
                del self._lanes[url]  # on the loop: no send can slip in between
                return
            outcome = await self._deliver(post)
            try:
                done(outcome)
            except Exception:
                logger.exception("Recording the webhook delivery to %s failed", url)
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    async def _deliver(self, post: Post) -> Outcome:
        outcome = await self._within_deadline(post)
        if outcome.ok:
            for _ in range(post.copies - 1):  # extra: it cannot undo the success
                await self._within_deadline(post)
        return outcome

    async def _within_deadline(self, post: Post) -> Outcome:
        try:
            async with asyncio.timeout(self.deadline):
                return await self._post(post)
        except TimeoutError:
            error = f"no complete answer within {self.deadline:g} s (the delivery deadline)"
            return Outcome(None, error, False)
        except Exception as error:  # refused, reset, a URL httpx will not send to: a failure
            return Outcome(None, describe(error), False)

    async def _post(self, post: Post) -> Outcome:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(headers={"user-agent": self.user_agent})
        async with self._client.stream(
            "POST", post.url, content=post.body, headers=post.headers, timeout=self.deadline
        ) as response:
            status = response.status_code
            if 200 <= status < 300:
                return Outcome(status, None, True)  # the body is not read at all
            head = bytearray()
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= 4 * self.snippet:  # enough for the snippet's characters
                    break
            text = bytes(head).decode("utf-8", errors="replace")[: self.snippet]
            return Outcome(status, f"HTTP {status}: {text}", False)

    async def _shutdown(self) -> None:
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        asyncio.get_running_loop().stop()


def describe(error: BaseException) -> str:
    """``Type: message``, with the operating system's reason where one caused it (the async
    client says only "All connection attempts failed" for a refused connection)."""
    text = f"{type(error).__name__}: {error}"
    cause = error.__cause__ or error.__context__
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno:
            return f"{text} ({os.strerror(cause.errno)})"
        cause = cause.__cause__ or cause.__context__
    return text
