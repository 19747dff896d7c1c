"""The demo's picture of a run, as a PNG: the dashboard's figure (``dashboard/figure.py``) drawn
with matplotlib.

Top: each attempt a bar from its start to its end, coloured by outcome, its deadline dashed, the
pending gaps between attempts left empty, and the runtime used of the ``timeout × (1 + retries)``
budget. Bottom: training and validation loss per epoch, with the epochs where a new attempt
resumed from a checkpoint marked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qcog_mock.mockserver.dashboard.figure import COLOURS, TRAIN_COLOUR, VAL_COLOUR, run_figure


def draw_run(run: dict[str, Any], path: Path, now: str | None = None) -> Path:
    """Write the run's picture as a PNG at ``path`` (``now``: the simulated time, by default
    the run's last update); returns the path."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from matplotlib import pyplot as plt

    figure = run_figure(run, now or run["updated_at"])
    plot, (timeline, losses) = plt.subplots(2, 1, figsize=(10, 6.5), height_ratios=[1, 2])
    for span in figure.spans:
        colour = COLOURS.get(span.outcome, COLOURS[None])
        # A white edge keeps adjacent attempts apart (the pending gap between them is 30 s).
        timeline.barh(
            1, span.end - span.start, left=span.start, color=colour, height=0.6,
            edgecolor="white", linewidth=2,
        )  # fmt: skip
        timeline.axvline(span.deadline, color=colour, linestyle="--", linewidth=0.8)
        timeline.text(span.start + figure.axis_end / 100, 0.95, span.label, fontsize=8,
                      color="white", fontweight="bold")  # fmt: skip
    timeline.barh(0, figure.budget_hours, color="#e0e0e0", height=0.3)
    timeline.barh(0, figure.used_hours, color="#616161", height=0.3)
    timeline.set_title(
        f"{figure.title}: {figure.status} — {figure.used_hours:.1f} h of the "
        f"{figure.budget_hours:.0f} h budget (timeout × (1 + retries))",
        fontsize=10,
    )
    timeline.set_xlabel("simulated hours since submission")
    timeline.set_yticks([0, 1], ["budget", "attempts"])
    timeline.set_xlim(0, max(figure.axis_end, figure.budget_hours) * 1.01)
    timeline.set_ylim(-0.5, 1.6)

    epochs = range(1, len(figure.train) + 1)
    losses.plot(epochs, figure.train, label="training loss", color=TRAIN_COLOUR)
    losses.plot(range(1, len(figure.val) + 1), figure.val, label="validation loss",
                color=VAL_COLOUR)  # fmt: skip
    top = max([v for v in figure.train if v == v] or [1.0])
    for number, resumed in figure.resumes:
        losses.axvline(resumed + 0.5, color="#9e9e9e", linestyle=":", linewidth=1)
        losses.text(resumed + 1, top, f"attempt {number}", fontsize=8)
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.legend(loc="upper right")
    plot.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    plot.savefig(path, dpi=110)
    plt.close(plot)
    return path
