"""A webhook receiver that verifies every delivery: ``qcog-mock listen`` and the tests' fixture.

It listens on a real socket (a standard-library threading HTTP server), checks each POST's
Standard Webhooks signature and timestamp against the secret, answers 2xx to genuine deliveries
and 400 to the rest, and keeps both: ``events`` (verified payloads, first arrival of each message
id, in order) and ``requests`` (everything received). ``fail_first`` makes it answer 503 to the
first N requests, to watch retries.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qcog_mock.mockserver.webhooks.signing import VerificationError, verify


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/webhooks",
        fail_first: int = 0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.secret = secret
        self.path = path
        self.fail_first = fail_first
        self.on_event = on_event
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode("utf-8", errors="replace")
                status, reason = receiver._receive(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"detail": reason}).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet; events are reported through on_event

        self._host = host
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}{self.path}"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _receive(self, path: str, headers: dict[str, str], body: str) -> tuple[int, str]:
        record: dict[str, Any] = {"path": path, "headers": headers, "body": body, "verified": False}
        with self._changed:
            self.requests.append(record)
            if len(self.requests) <= self.fail_first:
                record["answer"] = 503
                self._changed.notify_all()
                return 503, "failing on purpose"
        try:
            payload = verify(self.secret, headers, body)
        except (VerificationError, ValueError) as error:
            record["answer"] = 400
            record["error"] = str(error)
            return 400, f"verification failed: {error}"
        record.update(verified=True, answer=200)
        message_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        with self._changed:
            if message_id not in self._seen:
                self._seen.add(message_id)
                self.events.append(payload)
                if self.on_event is not None:
                    self.on_event(payload)
            self._changed.notify_all()
        return 200, "ok"

    def types(self, run_id: str | None = None) -> list[str]:
        return [e["type"] for e in self.events if run_id in (None, e["data"]["run"]["id"])]

    def wait_for(
        self, type_: str, *, run_id: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        """The first verified event of ``type_`` (for ``run_id``), waiting up to ``timeout`` s."""

        def found() -> dict[str, Any] | None:
            for event in self.events:
                if event["type"] == type_ and run_id in (None, event["data"]["run"]["id"]):
                    return event
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError(f"no '{type_}' webhook within {timeout} s; got {self.types()}")
            return found()  # type: ignore[return-value]


def print_event(event: dict[str, Any]) -> None:
    run = event["data"]["run"]
    extra = event["data"].get("reason") or ""
    attempt = f"attempt {run['attempt']}" if run.get("attempt") else ""
    print(
        f"[{event['timestamp']}] {event['type']:<18} {run['name']:<24} {attempt:<10} {extra}",
        flush=True,
    )
