"""The retry-extension rule, as a pure function: what follows an attempt's end.

The README's "Runs, attempts and the retry rule" section states it; ``tests/mockserver/
test_properties.py`` checks it against an oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

from qcog_mock.mockserver.documents import Outcome, RunStatus


@dataclass(frozen=True)
class Next:
    """The run's new status, the error to record (if any), and when the next attempt starts."""

    status: RunStatus
    error: str | None = None
    retry_at: float | None = None


def after_attempt(
    outcome: Outcome,
    number: int,
    max_attempts: int,
    reason: str | None,
    *,
    at: float,
    retry_delay: float,
    retryable: bool = True,
) -> Next | None:
    """``None`` for a cancelled attempt (the run is being removed)."""
    if outcome == "cancelled":
        return None
    if outcome == "completed":
        return Next("completed")
    message = f"Attempt {number} of {max_attempts} {reason}."
    if not retryable:
        return Next(
            "failed",
            f"Attempt {number} of {max_attempts} failed with an error that would repeat on every "
            f"attempt, so the run failed without retrying: {reason}",
        )
    if number < max_attempts:
        return Next("pending", message, at + retry_delay)
    return Next(
        "failed",
        f"{message} Retries exhausted: {max_attempts} of {max_attempts} attempts used "
        f"(retries={max_attempts - 1}); the run failed.",
    )
