"""What the pages and the console show of a run, from the run as the API returns it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunRow:
    """One line of a runs table."""

    id: str
    name: str
    status: str
    attempt: int
    max_attempts: int
    epoch: int
    epochs: int | str
    used_hours: float
    budget_hours: float
    next_attempt_at: str | None

    @property
    def attempt_text(self) -> str:
        return f"{self.attempt}/{self.max_attempts}"

    @property
    def epoch_text(self) -> str:
        return f"{self.epoch}/{self.epochs}"

    @property
    def runtime_text(self) -> str:
        return f"{self.used_hours:.1f}/{self.budget_hours:.0f} h"


def run_row(run: dict[str, Any]) -> RunRow:
    metrics = run.get("metrics") or {}
    return RunRow(
        id=run["id"],
        name=run["name"],
        status=run["status"],
        attempt=run.get("current_attempt") or 0,
        max_attempts=run["max_attempts"],
        epoch=metrics.get("epoch", metrics.get("epochs_completed", 0)),
        epochs=run["params"]["hyperparameters"].get("epochs", "?"),
        used_hours=run["runtime_seconds"] / 3600,
        budget_hours=run["runtime_limit_seconds"] / 3600,
        next_attempt_at=run.get("next_attempt_at"),
    )


def delivery_row(delivery: dict[str, Any]) -> dict[str, Any]:
    """A webhook delivery: its last attempt's answer and, while pending, the next retry."""
    last = delivery["attempts"][-1] if delivery["attempts"] else {}
    answer = last.get("error") or (f"HTTP {last['status_code']}" if last.get("status_code") else "")
    return {
        "id": delivery["id"],
        "type": delivery["type"],
        "status": delivery["status"],
        "attempts": len(delivery["attempts"]),
        "url": delivery["url"],
        "next_attempt_at": delivery.get("next_attempt_at"),
        "answer": answer,
    }
