"""What a run's picture shows, apart from how it is drawn.

The dashboard draws it as SVG (``svg.py``), the demo as a PNG (``cli/picture.py``): one
figure, two renderings. Times are simulated hours since the run was submitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.documents import TERMINAL

# By attempt outcome; None is an attempt still running.
COLOURS: dict[str | None, str] = {
    "completed": "#2e7d32",
    "timed_out": "#ef6c00",
    "crashed": "#c62828",
    "cancelled": "#757575",
    None: "#1565c0",
}
TRAIN_COLOUR, VAL_COLOUR = "#1565c0", "#ef6c00"


@dataclass(frozen=True)
class Span:
    """One attempt on the time axis."""

    number: int
    start: float
    end: float
    deadline: float
    outcome: str | None
    resumed_from_epoch: int
    epochs_completed: int

    @property
    def label(self) -> str:
        return f"{self.number}: {(self.outcome or 'running').replace('_', ' ')}"


@dataclass(frozen=True)
class RunFigure:
    title: str
    status: str
    spans: list[Span]
    now: float  # the simulated clock, on the same axis
    used_hours: float
    budget_hours: float  # timeout × (1 + retries)
    train: list[float]
    val: list[float]
    resumes: list[tuple[int, int]]  # (attempt number, epochs done when it resumed)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def axis_end(self) -> float:
        """Where the time axis ends: the last attempt's end for a finished run; else the
        present or the running attempt's deadline, whichever is later. Deadlines not far beyond
        (half as much again) are kept in view; a far one would squeeze the attempts flat."""
        ends = [s.end for s in self.spans]
        if not self.finished:
            ends += [self.now, *(s.deadline for s in self.spans if s.outcome is None)]
        end = max(ends, default=0.0)
        end = max([end, *(s.deadline for s in self.spans if s.deadline <= 1.5 * end)])
        return end * 1.02 if end > 0 else 1.0


def run_figure(run: dict[str, Any], now: str) -> RunFigure:
    """The figure of a run as the API shows it (``GET …/experiment_runs/{id}``)."""
    origin = parse_time(run["created_at"])

    def hours(stamp: str) -> float:
        return (parse_time(stamp) - origin) / 3600

    present = hours(now)
    spans = [
        Span(
            number=a["number"],
            start=hours(a["started_at"]),
            # A running attempt reaches to the present (never past its deadline).
            end=hours(a["ended_at"])
            if a["ended_at"]
            else min(max(present, hours(a["started_at"])), hours(a["deadline"])),
            deadline=hours(a["deadline"]),
            outcome=a["outcome"],
            resumed_from_epoch=a["resumed_from_epoch"],
            epochs_completed=a["epochs_completed"],
        )
        for a in run["attempts"]
    ]
    metrics = run.get("metrics") or {}
    return RunFigure(
        title=run["name"],
        status=run["status"],
        spans=spans,
        now=present,
        used_hours=run["runtime_seconds"] / 3600,
        budget_hours=run["runtime_limit_seconds"] / 3600,
        train=_finite(metrics.get("train_loss_history")),
        val=_finite(metrics.get("val_loss_history")),
        resumes=[(s.number, s.resumed_from_epoch) for s in spans[1:]],
    )


def _finite(values: list[Any] | None) -> list[float]:
    """A loss history with non-numbers as NaN (a diverged epoch is a gap, not an error)."""
    out = []
    for value in values or []:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        out.append(number if math.isfinite(number) else math.nan)
    return out


def nice_step(span: float, most: int = 8, hours: bool = False) -> float:
    """A tick step giving at most ``most`` ticks over ``span``: 1, 2 or 5 × 10^k, or, for
    ``hours`` longer than ``most``, hours that divide days (3, 6, 12, 24, …)."""
    if span <= 0:
        return 1.0
    if hours and span > most:
        for step in (2, 3, 6, 12, 24, 48, 72, 96, 168):
            if span / step <= most:
                return float(step)
    exponent = 10 ** math.floor(math.log10(span / most))
    for factor in (1, 2, 5, 10):
        if span / (factor * exponent) <= most:
            return float(factor * exponent)
    return span
