"""Webhooks: every run event posted to the run's ``local_webhook_url`` and the server's endpoints.

Payload (qcog-mock's own; the platform publishes none)::

    {"type": "attempt.timed_out", "id": "msg_…", "timestamp": "<simulated ISO time>",
     "data": {"run": {"id", "name", "status", "attempt", "metrics", "errors"}, …event fields}}

``type`` is the timeline event's type (``run.pending``, ``attempt.started``, ``run.completed``, …);
``checkpoint.saved`` is sent only when checkpoint webhooks are on.

Signing follows the Standard Webhooks specification: headers ``webhook-id`` (the message id, the
same on every retry), ``webhook-timestamp`` (wall-clock Unix seconds of this attempt, so receivers'
tolerance windows work) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``
keyed with the ``whsec_`` secret. ``X-Qcog-Mock-Time`` carries the simulated time.

Delivery: a POST at the event's simulated time, made by the simulation kernel so that deliveries
keep the timeline's order; a 2xx answer is success. Anything else, or no answer within the
timeout, is retried after 5 s, 5 min, 30 min, 2 h, 5 h and 10 h of simulated time, then the
delivery is marked failed. Deliveries live in an SQLite outbox and survive a restart.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from qcog_mock.mockserver.clock import isoformat, parse_time, wall_time
from qcog_mock.mockserver.errors import Invalid, NotFound
from qcog_mock.mockserver.simulation import Simulation
from qcog_mock.mockserver.store import Store

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600)
SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
CHECKPOINT_EVENT = "checkpoint.saved"


# Signing ------------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with '{SECRET_PREFIX}'")
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None


def check_secret(secret: str) -> str:
    _key(secret)
    return secret


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    content = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class VerificationError(Exception):
    pass


def verify(secret: str, headers: Mapping[str, str], body: str, now: float | None = None) -> dict:
    """The parsed payload of a genuine delivery; ``VerificationError`` otherwise."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        raise VerificationError("missing or malformed webhook headers") from None
    now = wall_time() if now is None else now
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise VerificationError("timestamp outside the tolerance window")
    expected = sign(secret, message_id, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise VerificationError("no matching signature")
    return json.loads(body)


# Targets ------------------------------------------------------------------------------------


def check_url(url: str, *, allow_remote: bool, field: str = "local_webhook_url") -> str:
    """An http(s) URL; by default only on a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"{field}: '{url}' is not an http(s) URL such as http://127.0.0.1:8080/hook.")
    if not allow_remote and not _loopback(parts.hostname):
        raise Invalid(
            f"{field}: '{url}' is not on this machine; qcog-mock posts webhooks to loopback "
            "addresses only unless started with --allow-remote-webhooks."
        )
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# The outbox ---------------------------------------------------------------------------------


class Webhooks:
    def __init__(
        self,
        store: Store,
        sim: Simulation,
        *,
        secret: str,
        endpoints: list[str],
        checkpoints: bool,
        timeout: float,
        faults_for: Callable[[str], list[Any]] = lambda run_id: [],
        on_fault: Callable[[str, Any, dict[str, Any]], None] = lambda run_id, fault, where: None,
    ) -> None:
        self.store = store
        self.sim = sim
        self.faults_for = faults_for
        self.on_fault = on_fault
        self.secret = secret
        self.endpoints = list(endpoints)
        self.checkpoints = checkpoints
        self.timeout = timeout
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=timeout, headers={"user-agent": "qcog-mock webhooks"})

    def close(self) -> None:
        self._http.close()

    def settings(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "endpoints": list(self.endpoints),
            "checkpoint_events": self.checkpoints,
            "timeout_seconds": self.timeout,
            "backoff_seconds": list(BACKOFF_SECONDS),
        }

    def enqueue(self, seq: int, event: dict[str, Any], run: dict[str, Any] | None) -> None:
        """Queue the event for the run's webhook URL and every server endpoint."""
        if run is None or event["type"].startswith("fault."):
            return
        if event["type"] == CHECKPOINT_EVENT and not self.checkpoints:
            return
        targets = [run["local_webhook_url"]] if run.get("local_webhook_url") else []
        targets += [url for url in self.endpoints if url not in targets]
        if not targets:
            return
        payload = {
            "type": event["type"],
            "id": f"msg_{seq}",
            "timestamp": event["time"],
            "data": {
                "run": {
                    "id": run["id"],
                    "name": run["name"],
                    "status": run["status"],
                    "attempt": run.get("current_attempt"),
                    "metrics": run.get("metrics"),
                    "errors": run.get("errors") or None,
                },
                **{
                    k: v
                    for k, v in event.items()
                    if k not in ("time", "type", "run_name", "status")
                },
            },
        }
        body = json.dumps(payload, separators=(",", ":"))
        when = self.sim.clock.now()
        delay = self._fault(run, "webhook_delay", messages=True)
        if delay is not None:
            when += delay.delay_seconds
            self.on_fault(run["id"], delay, {"message_id": f"msg_{seq}"})
        for index, url in enumerate(targets):
            delivery = self.store.add_delivery(
                {
                    "message_id": f"msg_{seq}",
                    "event_seq": seq,
                    "type": event["type"],
                    "run_id": run["id"],
                    "url": url,
                    "body": body,
                    "status": "pending",
                    "attempts": [],
                    "next_attempt_at_s": when,
                    "created_at": event["time"],
                }
            )
            self._schedule(delivery, when, index)

    def _schedule(self, delivery: dict[str, Any], when: float, index: int = 0) -> None:
        key = f"webhook-{delivery['event_seq']:012d}-{index:03d}"
        self.sim.call_at(when, key, lambda: self._deliver(delivery["id"]))

    def recover(self) -> None:
        """Re-schedule every delivery still pending (after a restart)."""
        for index, delivery in enumerate(self.store.deliveries(status="pending")):
            self._schedule(delivery, delivery["next_attempt_at_s"], index)

    def _deliver(self, delivery_id: int) -> None:
        delivery = self.store.delivery(delivery_id)
        if delivery is None or delivery["status"] != "pending":
            return
        self._attempt(delivery)
        attempts = delivery["attempts"]
        if attempts[-1]["ok"]:
            delivery["status"] = "delivered"
        elif len(attempts) <= len(BACKOFF_SECONDS):
            retry = self.sim.clock.now() + BACKOFF_SECONDS[len(attempts) - 1]
            delivery["next_attempt_at_s"] = retry
            self._schedule(delivery, retry)
        else:
            delivery["status"] = "failed"
        self.store.put_delivery(delivery)

    def _fault(
        self, run: dict[str, Any], kind: str, *, messages: bool = False, before: int | None = None
    ) -> Any:
        """The run's ``kind`` fault that applies now, if any.

        ``first`` counts the run's messages (``messages=True``; those before event ``before``)
        or its delivery attempts.
        """
        for fault in self.faults_for(run["id"]):
            if fault.type != kind:
                continue
            if fault.seconds is not None:
                elapsed = self.sim.clock.now() - parse_time(run["created_at"])
                if elapsed < fault.seconds:
                    return fault
            if fault.first is not None:
                deliveries = [
                    d
                    for d in self.store.deliveries(run_id=run["id"])
                    if before is None or d["event_seq"] < before
                ]
                done = (
                    len({d["message_id"] for d in deliveries})
                    if messages
                    else sum(len(d["attempts"]) for d in deliveries)
                )
                if done < fault.first:
                    return fault
        return None

    def _injected(self, run: dict[str, Any]) -> tuple[Any, str] | None:
        for kind in ("webhook_down", "webhook_timeout"):
            fault = self._fault(run, kind)
            if fault is not None:
                error = (
                    f"injected: endpoint answered HTTP {fault.status}"
                    if kind == "webhook_down"
                    else "injected: no answer (timeout)"
                )
                return fault, error
        return None

    def _attempt(self, delivery: dict[str, Any]) -> None:
        """One POST, or an injected failure; its outcome goes to ``delivery["attempts"]``."""
        simulated = self.sim.clock.now()
        timestamp = int(wall_time())
        record: dict[str, Any] = {
            "number": len(delivery["attempts"]) + 1,
            "simulated_at": isoformat(simulated),
            "wall_at": isoformat(float(timestamp)),
            "status_code": None,
            "error": None,
            "ok": False,
        }
        run = self.store.get("run", delivery["run_id"]) if delivery.get("run_id") else None
        injected = self._injected(run) if run else None
        if injected is not None:
            fault, record["error"] = injected
            if fault.type == "webhook_down":
                record["status_code"] = fault.status
            self.on_fault(delivery["run_id"], fault, {"message_id": delivery["message_id"]})
        else:
            self._post(delivery, run, simulated, timestamp, record)
        delivery["attempts"].append(record)

    def _post(
        self,
        delivery: dict[str, Any],
        run: dict[str, Any] | None,
        simulated: float,
        timestamp: int,
        record: dict[str, Any],
    ) -> None:
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery["message_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(
                self.secret, delivery["message_id"], timestamp, delivery["body"]
            ),
            "X-Qcog-Mock-Time": isoformat(simulated),
        }
        try:
            response = self._http.post(delivery["url"], content=delivery["body"], headers=headers)
        except httpx.HTTPError as error:
            record["error"] = f"{type(error).__name__}: {error}"
            return
        record["status_code"] = response.status_code
        record["ok"] = 200 <= response.status_code < 300
        if not record["ok"]:
            record["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
            return
        duplicate = (
            self._fault(run, "webhook_duplicate", messages=True, before=delivery["event_seq"])
            if run
            else None
        )
        if duplicate is not None:  # a message succeeds once: it is sent twice
            self.on_fault(delivery["run_id"], duplicate, {"message_id": delivery["message_id"]})
            # The duplicate is extra: the delivery has already succeeded whatever it meets.
            with contextlib.suppress(httpx.HTTPError):
                self._http.post(delivery["url"], content=delivery["body"], headers=headers)

    def resend(self, delivery_id: int) -> dict[str, Any]:
        """Send a delivery again now (same message id), whatever its status."""
        delivery = self.store.delivery(delivery_id)
        if delivery is None:
            raise NotFound("Delivery", str(delivery_id))
        delivery["status"] = "pending"
        delivery["next_attempt_at_s"] = self.sim.clock.now()
        self.store.put_delivery(delivery)
        self._schedule(delivery, self.sim.clock.now())
        return delivery


def public_delivery(delivery: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in delivery.items() if k not in ("body", "next_attempt_at_s")}
    view["next_attempt_at"] = (
        isoformat(delivery["next_attempt_at_s"]) if delivery["status"] == "pending" else None
    )
    view["payload"] = json.loads(delivery["body"])
    return view
