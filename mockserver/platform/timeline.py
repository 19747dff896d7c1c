"""The event timeline: the one place events are born (a row, then its webhook deliveries)."""

from __future__ import annotations

from typing import Any

from qcog_mock.mockserver.clock import SimulatedClock, isoformat
from qcog_mock.mockserver.documents import Run
from qcog_mock.mockserver.store import Store
from qcog_mock.mockserver.webhooks.outbox import Webhooks


class Timeline:
    def __init__(self, store: Store, clock: SimulatedClock) -> None:
        self.store = store
        self.clock = clock
        self.webhooks: Webhooks | None = None  # wired after the outbox, which emits faults here

    def emit(self, type_: str, run: Run | None = None, **data: Any) -> None:
        """Append to the timeline at the current simulated time, and queue its webhooks."""
        now = self.clock.now()
        body: dict[str, Any] = {"time": isoformat(now), "type": type_}
        if run is not None:
            body.update(run_id=run.id, run_name=run.name, status=run.status)
        body.update(data)
        with self.store.transaction():  # an event and its deliveries land together
            seq = self.store.add_event(now, type_, run.id if run else None, body)
            if self.webhooks is not None:
                self.webhooks.enqueue(seq, body, run)

    def events(self, run_id: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        return self.store.events(run_id, after, limit)
