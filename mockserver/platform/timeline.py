"""The event timeline: the one place events are born. Each is a row, then whatever its
subscribers (the webhook outbox) make of it, in the same transaction."""

from __future__ import annotations

from typing import Any, Protocol

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.clock import SimulatedClock, isoformat
from qcog_mock.mockserver.documents import Run
from qcog_mock.mockserver.store import Store


class Emitter(Protocol):
    """What the engine and the outbox are given to tell of an event: the timeline."""

    def emit(self, type_: str, run: Run | None = None, **data: Any) -> None: ...


class Subscriber(Protocol):
    def on_event(self, seq: int, event: dict[str, Any], run: Run | None) -> None:
        """Called inside the event's transaction: what it writes lands with the event."""


class Timeline:
    def __init__(self, store: Store, clock: SimulatedClock) -> None:
        self.store = store
        self.clock = clock
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        """Register a subscriber; the platform does, as it builds its parts."""
        self._subscribers.append(subscriber)

    def emit(self, type_: str, run: Run | None = None, **data: Any) -> None:
        """Append to the timeline at the current simulated time, and tell the subscribers."""
        now = self.clock.now()
        body: dict[str, Any] = {"time": isoformat(now), "type": type_}
        if run is not None:
            body.update(run_id=run.id, run_name=run.name, status=run.status)
        body.update(data)
        run_id = run.id if run is not None else body.get("run_id")
        with self.store.transaction():  # an event and its deliveries land together
            seq = self.store.add_event(now, type_, run_id, body)
            for subscriber in self._subscribers:
                subscriber.on_event(seq, body, run)

    def events(self, run_id: str | None, after: int, limit: int) -> list[schemas.Event]:
        return [schemas.Event(**event) for event in self.store.events(run_id, after, limit)]
