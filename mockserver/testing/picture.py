"""One picture of a run: its attempts on the simulated time axis, and its loss curves.

Top: each attempt a bar from its start to its end, coloured by outcome, its deadline dashed, the
pending gaps between attempts left empty, and how much of the ``timeout × (1 + retries)`` budget
the run used. Bottom: training and validation loss per epoch, with the epochs where a new
attempt resumed from a checkpoint marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcog_mock.mockserver.clock import parse_time

COLOURS = {
    "completed": "#2e7d32",
    "timed_out": "#ef6c00",
    "crashed": "#c62828",
    "cancelled": "#757575",
    None: "#1565c0",  # still running
}


def draw_run(run: dict[str, Any], path: Path) -> Path:
    """Write the run's picture as a PNG at ``path``; returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt

    figure, (timeline, losses) = plt.subplots(2, 1, figsize=(10, 6.5), height_ratios=[1, 2])
    origin = parse_time(run["created_at"])

    def hours(stamp: str) -> float:
        return (parse_time(stamp) - origin) / 3600

    for row, attempt in enumerate(run["attempts"]):
        start = hours(attempt["started_at"])
        end = hours(attempt["ended_at"]) if attempt["ended_at"] else start
        colour = COLOURS.get(attempt["outcome"], COLOURS[None])
        # A white edge keeps adjacent attempts apart (the pending gap between them is 30 s).
        timeline.barh(
            0, end - start, left=start, color=colour, height=0.5, edgecolor="white", linewidth=2
        )
        timeline.axvline(hours(attempt["deadline"]), color=colour, linestyle="--", linewidth=0.8)
        label = f"{attempt['number']}: {attempt['outcome'] or 'running'}"
        timeline.text(start + 0.5, 0.33 + 0.12 * (row % 2), label, fontsize=8)
    used, limit = run["runtime_seconds"] / 3600, run["runtime_limit_seconds"] / 3600
    timeline.set_title(
        f"{run['name']}: {run['status']} — {used:.1f} h of the {limit:.0f} h budget "
        "(timeout × (1 + retries))",
        fontsize=10,
    )
    timeline.set_xlabel("simulated hours since submission")
    timeline.set_yticks([])
    timeline.set_ylim(-0.5, 0.7)

    metrics = run.get("metrics") or {}
    train, val = metrics.get("train_loss_history") or [], metrics.get("val_loss_history") or []
    epochs = range(1, len(train) + 1)
    losses.plot(epochs, train, label="training loss", color="#1565c0")
    losses.plot(range(1, len(val) + 1), val, label="validation loss", color="#ef6c00")
    for attempt in run["attempts"][1:]:
        resumed = attempt["resumed_from_epoch"]
        losses.axvline(resumed + 0.5, color="#9e9e9e", linestyle=":", linewidth=1)
        losses.text(resumed + 1, max(train or [1.0]), f"attempt {attempt['number']}", fontsize=8)
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
