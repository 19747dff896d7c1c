"""The webhook outbox: every run event posted to the run's ``local_webhook_url`` and the server's
endpoints, at the event's simulated time, retried on the simulated clock.

The README's "Webhooks" section gives the payload, the headers and the retry schedule. The
simulation kernel decides when each delivery is due and what faults it meets; the ``Sender``
makes the POST, off the kernel, in order per endpoint. An attempt is recorded at its due time
however late its POST goes out, so the outbox is the same on every machine; deliveries live in
an SQLite table and survive a restart.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from qcog_mock.mockserver import jsontext, schemas
from qcog_mock.mockserver.clock import TIME_HEADER, isoformat, wall_time
from qcog_mock.mockserver.documents import Delivery, Run
from qcog_mock.mockserver.errors import NotFound
from qcog_mock.mockserver.faults import FaultPlan, ServerFaults, WebhookFault, WebhookFaultType
from qcog_mock.mockserver.records import Records
from qcog_mock.mockserver.simulation import Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.mockserver.webhooks.events import is_webhook_event
from qcog_mock.mockserver.webhooks.sender import Outcome, Post, Sender
from qcog_mock.mockserver.webhooks.signing import sign

if TYPE_CHECKING:  # platform/ imports the outbox: its timeline is named for types only
    from qcog_mock.mockserver.platform.timeline import Emitter

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
SNIPPET = 64  # characters of a failed delivery's answer that are kept


class Webhooks:
    def __init__(
        self,
        store: Store,
        sim: Simulation,
        server_faults: ServerFaults,
        timeline: Emitter,
        *,
        secret: str,
        endpoints: list[str],
        checkpoints: bool,
        timeout: float,
    ) -> None:
        self.store = store
        self.records = Records(store)
        self.sim = sim
        self.server_faults = server_faults
        self.timeline = timeline
        self.secret = secret
        self.endpoints = list(endpoints)
        self.checkpoints = checkpoints
        self.timeout = timeout
        self.sender = Sender(timeout, SNIPPET, "qcog-mock webhooks")
        self._recording = threading.Lock()  # the kernel and the sender both record attempts

    def close(self) -> None:
        self.sender.close()

    def public(self) -> schemas.WebhookSettings:
        return schemas.WebhookSettings(
            secret=self.secret,
            endpoints=list(self.endpoints),
            checkpoint_events=self.checkpoints,
            timeout_seconds=self.timeout,
            backoff_seconds=list(BACKOFF_SECONDS),
        )

    def _plan(self, run: Run) -> FaultPlan:
        return self.server_faults.for_run(run.params.faults)

    def _injected(self, run: Run, fault: WebhookFault, message_id: str) -> None:
        self.timeline.emit("fault.injected", run, fault=fault.model_dump(), message_id=message_id)

    def on_event(self, seq: int, event: dict[str, Any], run: Run | None) -> None:
        """The timeline's subscriber: queue the event for the run's webhook URL and every
        server endpoint."""
        if run is None or not is_webhook_event(event["type"], checkpoints=self.checkpoints):
            return
        targets = [run.local_webhook_url] if run.local_webhook_url else []
        targets += [url for url in self.endpoints if url not in targets]
        if not targets:
            return
        message_id = f"msg_{seq}"
        payload = {
            "type": event["type"],
            "id": message_id,
            "timestamp": event["time"],
            "data": {
                "run": {
                    "id": run.id,
                    "name": run.name,
                    "status": run.status,
                    "attempt": run.current_attempt,
                    "metrics": run.metrics,
                    "errors": run.errors or None,
                },
                **{
                    k: v
                    for k, v in event.items()
                    if k not in ("time", "type", "run_name", "status")
                },
            },
        }
        body = jsontext.dumps(payload, separators=(",", ":"))
        now = when = self.sim.clock.now()
        delay = self._fault(run, self._plan(run), "webhook_delay", messages=True)
        if delay is not None:
            when += delay.delay_seconds
            self._injected(run, delay, message_id)
        for index, url in enumerate(targets):
            delivery = Delivery(
                message_id=message_id,
                event_seq=seq,
                type=event["type"],
                run_id=run.id,
                url=url,
                body=body,
                created_at=now,
                next_attempt_at=when,
            )
            delivery.id = self.store.add_delivery(delivery.to_doc())["id"]
            self._schedule(delivery, when, index)

    def _schedule(self, delivery: Delivery, when: float, index: int = 0) -> None:
        key = f"webhook-{delivery.event_seq:012d}-{index:03d}"
        delivery_id = delivery.id
        self.sim.call_at(when, key, lambda: self._deliver(delivery_id))

    def recover(self) -> None:
        """Re-schedule every delivery still pending (after a restart)."""
        for index, doc in enumerate(self.store.deliveries(status="pending")):
            delivery = Delivery.from_doc(doc)
            self._schedule(delivery, delivery.next_attempt_at, index)

    def get(self, delivery_id: int) -> Delivery:
        # Outbox ids are SQLite integers: anything beyond them names no delivery.
        doc = self.store.delivery(delivery_id) if 0 < delivery_id < 2**63 else None
        if doc is None:
            raise NotFound("Delivery", str(delivery_id))
        return Delivery.from_doc(doc)

    def deliveries(self, run_id: str | None, status: str | None) -> list[Delivery]:
        return [Delivery.from_doc(d) for d in self.store.deliveries(status=status, run_id=run_id)]

    def _deliver(self, delivery_id: int) -> None:
        """The kernel's part, at the delivery's due time: faults, then the POST handed over."""
        doc = self.store.delivery(delivery_id)
        if doc is None or doc["status"] != "pending":
            return
        self._attempt(Delivery.from_doc(doc))

    def _record(self, delivery_id: int, record: dict[str, Any], due: float) -> None:
        """An attempt's outcome, and what follows: delivered, retried on the backoff schedule
        from its due time, or failed for good."""
        with self._recording:
            doc = self.store.delivery(delivery_id)
            if doc is None:  # a reset cleared the outbox meanwhile
                return
            delivery = Delivery.from_doc(doc)
            delivery.attempts.append(record)
            attempts = delivery.attempts
            retry = False
            if record["ok"]:
                delivery.status = "delivered"
            elif len(attempts) <= len(BACKOFF_SECONDS):
                delivery.status = "pending"
                delivery.next_attempt_at = due + BACKOFF_SECONDS[len(attempts) - 1]
                retry = True
            else:
                delivery.status = "failed"
            self.store.put_delivery(delivery.to_doc())
            # Stored first: the kernel may run the retry at once (a clock already past it),
            # and it reads the delivery from the store. Scheduled before the write, it read
            # the attempt just answered and sent it again at the same simulated time.
            if retry:
                self._schedule(delivery, delivery.next_attempt_at)

    def _fault(
        self,
        run: Run,
        plan: FaultPlan,
        kind: WebhookFaultType,
        *,
        messages: bool = False,
        before: int | None = None,
    ) -> WebhookFault | None:
        """The run's ``kind`` fault that applies now, if any (the plan decides; this counts).

        ``first`` counts the run's messages (``messages=True``; those before event ``before``)
        or its delivery attempts.
        """

        def count() -> int:
            deliveries = [
                d
                for d in self.store.deliveries(run_id=run.id)
                if before is None or d["event_seq"] < before
            ]
            if messages:
                return len({d["message_id"] for d in deliveries})
            return sum(len(d["attempts"]) for d in deliveries)

        return plan.webhook(kind, age=self.sim.clock.now() - run.created_at, count=count)

    def _attempt(self, delivery: Delivery) -> None:
        """One attempt: an injected failure, recorded at once, or a POST handed to the sender.
        Its simulated time is the due time, whenever the POST goes out."""
        due = delivery.next_attempt_at
        timestamp = int(wall_time())
        record: dict[str, Any] = {
            "number": len(delivery.attempts) + 1,
            "simulated_at": isoformat(due),
            "wall_at": isoformat(float(timestamp)),
            "status_code": None,
            "error": None,
            "ok": False,
        }
        run = self.records.runs.get(delivery.run_id) if delivery.run_id else None
        plan = self._plan(run) if run is not None else FaultPlan()
        if run is not None:
            for kind in ("webhook_down", "webhook_timeout"):
                if (fault := self._fault(run, plan, kind)) is not None:
                    if fault.type == "webhook_down":
                        record["status_code"] = fault.status
                        record["error"] = f"injected: endpoint answered HTTP {fault.status}"
                    else:
                        record["error"] = "injected: no answer (timeout)"
                    self._injected(run, fault, delivery.message_id)
                    self._record(delivery.id, record, due)
                    return
        copies = 1
        if run is not None:
            duplicate = self._fault(
                run, plan, "webhook_duplicate", messages=True, before=delivery.event_seq
            )
            if duplicate is not None:  # sent twice once it succeeds; said on its first try
                copies = 2
                if not delivery.attempts:
                    self._injected(run, duplicate, delivery.message_id)
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secret, delivery.message_id, timestamp, delivery.body),
            TIME_HEADER: isoformat(due),
        }
        delivery_id = delivery.id

        def sent(outcome: Outcome) -> None:
            record.update(status_code=outcome.status_code, error=outcome.error, ok=outcome.ok)
            self._record(delivery_id, record, due)

        self.sender.send(Post(delivery.url, delivery.body, headers, copies), sent)

    def resend(self, delivery_id: int) -> Delivery:
        """Send a delivery again now (same message id), whatever its status."""
        delivery = self.get(delivery_id)
        delivery.status = "pending"
        delivery.next_attempt_at = self.sim.clock.now()
        self.store.put_delivery(delivery.to_doc())
        self._schedule(delivery, delivery.next_attempt_at)
        return delivery
