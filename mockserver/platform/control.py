"""The control plane (``/_emulator``): the clock, the timeline, fault plans, webhook endpoints
and deliveries. Outside the platform's contract; the README's "Control plane" section lists it."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.clock import LATEST, SimulatedClock, isoformat, parse_time
from qcog_mock.mockserver.errors import Conflict, Invalid, NotFound, TooBusy
from qcog_mock.mockserver.faults import Fault, ServerFaults
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.simulation import Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.mockserver.webhooks.outbox import Webhooks
from qcog_mock.mockserver.webhooks.signing import check_url


class Control:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: SimulatedClock,
        sim: Simulation,
        server_faults: ServerFaults,
        webhooks: Webhooks,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.sim = sim
        self.server_faults = server_faults
        self.webhooks = webhooks
        # Advance and settle hold a server thread until the clock has moved; a few at once.
        self._blocking = threading.BoundedSemaphore(settings.max_blocking_control_calls)

    @contextmanager
    def _blocking_call(self) -> Iterator[None]:
        if not self._blocking.acquire(blocking=False):
            limit = self.settings.max_blocking_control_calls
            raise TooBusy(
                f"{limit} clock advances or settles are already running; try again when one "
                "has returned."
            )
        try:
            yield
        finally:
            self._blocking.release()

    # Clock ----------------------------------------------------------------------------------

    def clock_state(self) -> schemas.Clock:
        now = self.clock.now()
        upcoming = self.sim.next_event_time()
        return schemas.Clock(
            now=isoformat(now),
            timestamp=now,
            mode=self.clock.mode,
            speed=self.clock.speed,
            # Rounded up: advancing to this time is sure to reach the event.
            next_event_at=isoformat(math.ceil(upcoming * 1000) / 1000)
            if upcoming is not None
            else None,
        )

    def advance(self, seconds: float | None = None, to: float | None = None) -> schemas.Clock:
        now = self.clock.now()
        if seconds is not None and to is None:
            target = now + seconds
        elif to is not None and seconds is None:
            target = float(to)
        else:
            raise Invalid("Give exactly one of 'seconds' (a duration) or 'to' (a time).")
        if target < now:
            raise Invalid(f"The clock cannot go back: now is {isoformat(now)}.")
        if not target <= parse_time(LATEST):
            raise Invalid(f"The simulated clock stops at {LATEST}; advance it by less.")
        if self.clock.mode == "realtime":
            raise Conflict("The clock is in realtime mode; switch to manual to advance it.")
        with self._blocking_call():
            self.sim.advance_to(target)
            # Due deliveries have been handed to the sender: done once each is answered, and
            # the retries a failure schedules up to the target are done too.
            while self.webhooks.sender.busy():
                self.webhooks.sender.drain()
                self.sim.advance_to(target)
        self.store.save_clock(self.clock)
        return self.clock_state()

    def settle(self, timeout: float) -> schemas.Settled:
        """Wait (wall seconds, at most ``timeout``) until nothing is due; in auto mode, until
        every run has gone as far as it can."""
        deadline = monotonic() + timeout
        with self._blocking_call():
            settled = self.sim.settle(timeout)
            while settled and self.webhooks.sender.busy():  # deliveries in flight: answered
                left = max(0.0, deadline - monotonic())
                settled = self.webhooks.sender.drain(left) and self.sim.settle(left)
        self.store.save_clock(self.clock)
        return schemas.Settled(**self.clock_state().model_dump(), settled=settled)

    def set_clock_mode(self, mode: str, speed: float | None) -> schemas.Clock:
        try:
            self.clock.set_mode(mode, speed)  # type: ignore[arg-type]
        except ValueError as error:
            raise Invalid(f"mode: {error}") from None
        self.sim.wake()
        self.store.save_clock(self.clock)
        return self.clock_state()

    # Fault plans ----------------------------------------------------------------------------

    def faults(self) -> list[Fault]:
        return list(self.server_faults.plan)

    def set_faults(self, plan: Any) -> list[Fault]:
        """Replace the server-wide fault plan (it applies to every run from now on)."""
        return self.server_faults.set(plan)

    # Webhooks -------------------------------------------------------------------------------

    def webhook_settings(self) -> schemas.WebhookSettings:
        return self.webhooks.public()

    def add_webhook_endpoint(self, url: str) -> schemas.WebhookSettings:
        check_url(url, allow_remote=self.settings.allow_remote_webhooks, field="url")
        if url not in self.webhooks.endpoints:
            self.webhooks.endpoints.append(url)
            self.store.set_setting("webhook_endpoints", self.webhooks.endpoints)
        return self.webhooks.public()

    def remove_webhook_endpoint(self, url: str) -> schemas.WebhookSettings:
        if url not in self.webhooks.endpoints:
            raise NotFound("Webhook endpoint", url, by="url")
        self.webhooks.endpoints.remove(url)
        self.store.set_setting("webhook_endpoints", self.webhooks.endpoints)
        return self.webhooks.public()

    def deliveries(self, run_id: str | None, status: str | None) -> list[schemas.Delivery]:
        return [d.public() for d in self.webhooks.deliveries(run_id, status)]

    def resend(self, delivery_id: int) -> schemas.Delivery:
        return self.webhooks.resend(delivery_id).public()
