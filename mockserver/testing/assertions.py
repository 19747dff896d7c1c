"""Assertions about a run's story, with failure messages shaped like the story.

assert_statuses(events, ["pending", "running", "pending", "running", "completed"])
assert_attempts(run, ["timed_out", "completed"])
assert_webhooks_match_timeline(receiver, events, run_id)
"""

from __future__ import annotations

from typing import Any

from qcog_mock.mockserver.webhooks.events import is_webhook_event

STATUS_EVENTS = ("run.pending", "run.running", "run.completed", "run.failed")


def _timeline(events: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"    {e['time']}  {e['type']}"
        + (f"  (attempt {e['attempt']})" if e.get("attempt") else "")
        for e in events[-12:]
    )


def mismatch(what: str, expected: Any, actual: Any, events: list[dict[str, Any]]) -> str:
    """How every harness check says it failed (these assertions and the scenarios'): what,
    expected, actual, and the end of the run's timeline."""
    return (
        f"{what}\n  expected: {expected!r}\n  actual:   {actual!r}\n  last events:\n"
        f"{_timeline(events)}"
    )


def _mismatch(
    what: str, expected: Any, actual: Any, events: list[dict[str, Any]]
) -> AssertionError:
    return AssertionError(mismatch(what, expected, actual, events))


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("run.") for e in events if e["type"] in STATUS_EVENTS]


def assert_statuses(events: list[dict[str, Any]], expected: list[str]) -> None:
    """The run's status sequence, read from its ``/_emulator/events`` timeline."""
    actual = statuses(events)
    if actual != expected:
        raise _mismatch("Status sequence differs", expected, actual, events)


def assert_attempts(
    run: dict[str, Any], expected: list[str], events: list[dict[str, Any]] | None = None
) -> None:
    """The outcomes of the run's attempts, in order."""
    actual = [a["outcome"] for a in run["attempts"]]
    if actual != expected:
        raise _mismatch(
            f"Attempt outcomes of run '{run['name']}' differ", expected, actual, events or []
        )


def assert_webhooks_match_timeline(
    receiver: Any, events: list[dict[str, Any]], run_id: str, *, ordered: bool = True
) -> None:
    """The receiver got exactly the run's timeline (checkpoints and faults aside)."""
    expected = [e["type"] for e in events if is_webhook_event(e["type"])]
    actual = receiver.types(run_id)
    if (expected if ordered else sorted(expected)) != (actual if ordered else sorted(actual)):
        raise _mismatch("Webhooks differ from the timeline", expected, actual, events)
