"""What the pages and the console show of a run, from the run as the API returns it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PARAMETERS = ("timeout", "retries", "max_attempts", "cpu_count", "memory", "gpu_type")
METRICS = (
    "epochs_completed",
    "final_train_loss",
    "final_val_loss",
    "best_val_loss",
    "test_loss",
    "train_dataset_size",
    "val_dataset_size",
    "total_training_time",
)


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


def shown(value: Any) -> str:
    """A value as the pages and the console show it: floats to six significant digits (losses
    are stored to seventeen), nested values as compact JSON, the rest as they are."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    return str(value)


def parameters(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's limits, then each hyperparameter."""
    params = run.get("params") or {}
    found = {**params, "max_attempts": run.get("max_attempts")}
    pairs = [(key, shown(found[key])) for key in PARAMETERS if found.get(key) is not None]
    hyperparameters = params.get("hyperparameters") or {}
    return pairs + [(key, shown(value)) for key, value in hyperparameters.items()]


def final_metrics(run: dict[str, Any]) -> list[tuple[str, str]]:
    metrics = run.get("metrics") or {}
    return [(key, shown(metrics[key])) for key in METRICS if metrics.get(key) is not None]


def epoch_reached(attempt: dict[str, Any]) -> int:
    """The last epoch an attempt completed, counted from the run's start."""
    return (attempt.get("resumed_from_epoch") or 0) + (attempt.get("epochs_completed") or 0)


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
