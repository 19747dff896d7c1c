"""A run's figure as inline SVG: the attempt timeline and the loss curves.

Plain strings with escaped text and presentation attributes only (no ``style`` attributes, no
script), so the page's Content-Security-Policy can stay ``'self'``. Each chart scales to its
container through its ``viewBox``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from html import escape

from qcog_mock.mockserver.dashboard.figure import (
    COLOURS,
    TRAIN_COLOUR,
    VAL_COLOUR,
    RunFigure,
    nice_step,
)

WIDTH = 960
LEFT, RIGHT = 84, 16


def _n(value: float) -> str:
    return f"{value:.1f}"


def _svg(name: str, height: int, title: str, description: str, body: list[str]) -> str:
    return (
        f'<svg class="chart chart-{name}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{name}-title {name}-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="{name}-title">{escape(title)}</title>'
        f'<desc id="{name}-desc">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def _ticks(low: float, high: float, most: int, hours: bool = False) -> Iterator[float]:
    step = nice_step(high - low, most, hours)
    for k in range(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9) + 1):
        yield round(k * step, 9)


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def timeline(figure: RunFigure) -> str:
    """Attempts as bars on the simulated time axis (coloured by outcome), their deadlines
    dashed, the present marked, and below them the runtime used of the run's budget."""
    height, end = 150, figure.axis_end

    def x(hours: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(max(hours, 0.0), end) / end

    body = [
        '<text class="axis-label" x="4" y="52">attempts</text>',
        '<text class="axis-label" x="4" y="101">budget</text>',
    ]
    for span in figure.spans:
        colour = COLOURS.get(span.outcome, COLOURS[None])
        left, right = x(span.start), x(span.end)
        summary = (
            f"Attempt {span.number}: {(span.outcome or 'running').replace('_', ' ')}, "
            f"{span.start:.2f} h to {span.end:.2f} h, epochs {span.resumed_from_epoch} to "
            f"{span.resumed_from_epoch + span.epochs_completed}, deadline {span.deadline:.2f} h"
        )
        body.append(
            f'<rect class="attempt" data-attempt="{span.number}" '
            f'data-outcome="{escape(span.outcome or "running")}" x="{_n(left)}" y="30" '
            f'width="{_n(max(right - left, 2.0))}" height="40" fill="{colour}" stroke="#fff" '
            f'stroke-width="2"><title>{escape(summary)}</title></rect>'
        )
        if right - left > 70:
            body.append(
                f'<text class="bar-label" x="{_n(left + 6)}" y="55">{escape(span.label)}</text>'
            )
        if span.deadline <= end:
            body.append(
                f'<line class="deadline" x1="{_n(x(span.deadline))}" x2="{_n(x(span.deadline))}" '
                f'y1="22" y2="78" stroke="{colour}" stroke-dasharray="5 3" stroke-width="1.5">'
                f"<title>Attempt {span.number}'s deadline: {span.deadline:.2f} h</title></line>"
            )
    if not figure.finished and figure.now <= end:
        body.append(
            f'<line class="now" x1="{_n(x(figure.now))}" x2="{_n(x(figure.now))}" y1="16" '
            f'y2="112" stroke="#6a1b9a" stroke-width="2"><title>now</title></line>'
        )
    budget = figure.budget_hours
    body.append(
        f'<rect class="budget" x="{LEFT}" y="90" width="{_n(x(budget) - LEFT)}" height="14" '
        f'fill="#e0e0e0"><title>budget: timeout × (1 + retries) = {budget:.1f} h</title></rect>'
    )
    body.append(
        f'<rect class="budget-used" x="{LEFT}" y="90" '
        f'width="{_n(max(x(figure.used_hours) - LEFT, 0))}" height="14" fill="#616161">'
        f"<title>runtime used: {figure.used_hours:.2f} h</title></rect>"
    )
    for tick in _ticks(0, end, 8, hours=True):
        body.append(
            f'<line class="tick" x1="{_n(x(tick))}" x2="{_n(x(tick))}" y1="114" y2="120" '
            f'stroke="#424242"/><text class="tick-label" x="{_n(x(tick))}" y="136" '
            f'text-anchor="middle">{_label(tick)} h</text>'
        )
    body.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="114" y2="114" stroke="#424242"/>')
    outcomes = ", ".join(s.label for s in figure.spans) or "no attempt yet"
    return _svg(
        "timeline",
        height,
        f"{figure.title}: attempts on the simulated time axis",
        f"{len(figure.spans)} attempts ({outcomes}); runtime {figure.used_hours:.1f} h of a "
        f"{budget:.1f} h budget; hours since submission.",
        body,
    )


def _polylines(
    values: list[float], x: Callable[[float], float], y: Callable[[float], float]
) -> Iterator[list[str]]:
    """One polyline per stretch of finite values (a NaN loss breaks the curve)."""
    stretch: list[str] = []
    for epoch, value in enumerate(values, start=1):
        if math.isnan(value):
            if stretch:
                yield stretch
            stretch = []
        else:
            stretch.append(f"{_n(x(epoch))},{_n(y(value))}")
    if stretch:
        yield stretch


def losses(figure: RunFigure) -> str:
    """Training and validation loss per epoch, across attempts; each resume point marked."""
    height, top, bottom = 280, 30, 240
    curves = [
        ("train", "training loss", figure.train, TRAIN_COLOUR),
        ("val", "validation loss", figure.val, VAL_COLOUR),
    ]
    finite = [v for _, _, values, _ in curves for v in values if not math.isnan(v)]
    if not figure.train and not figure.val:  # a run that ended before its first epoch
        note = (
            f'<text class="axis-label" x="{WIDTH // 2}" y="{height // 2}" text-anchor="middle">'
            "No epoch finished: no losses to draw.</text>"
        )
        summary = "0 epochs; no epoch finished yet."
        return _svg("losses", height, f"{figure.title}: loss per epoch", summary, [note])
    epochs = max(len(figure.train), len(figure.val), 1)
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12 * max(1.0, abs(high)):  # one value: a band around it
        spread = max(0.5, abs(high) * 0.1)  # relative: ±0.5 is lost at 1e24
        low, high = low - spread, high + spread
    pad = (high - low) * 0.05
    low, high = low - pad, high + pad

    def x(epoch: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (epoch - 0.5) / epochs

    def y(value: float) -> float:
        return bottom - (bottom - top) * (value - low) / (high - low)

    body = [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#424242"/>',
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{top}" y2="{bottom}" stroke="#424242"/>',
    ]
    for tick in _ticks(low, high, 5):
        body.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y(tick))}" '
            f'y2="{_n(y(tick))}" stroke="#eeeeee"/><text class="tick-label" x="{LEFT - 6}" '
            f'y="{_n(y(tick) + 4)}" text-anchor="end">{_label(tick)}</text>'
        )
    for tick in _ticks(1, epochs, 10):
        if tick == int(tick):  # whole epochs only
            body.append(
                f'<text class="tick-label" x="{_n(x(tick))}" y="{bottom + 18}" '
                f'text-anchor="middle">{int(tick)}</text>'
            )
    body.append(
        f'<text class="axis-label" x="{(WIDTH + LEFT) // 2}" y="{height - 6}" '
        'text-anchor="middle">epoch</text>'
    )
    for number, resumed in figure.resumes:
        at = _n(x(resumed + 0.5))
        body.append(
            f'<line class="resume" data-attempt="{number}" x1="{at}" x2="{at}" y1="{top}" '
            f'y2="{bottom}" stroke="#9e9e9e" stroke-dasharray="2 3" stroke-width="1.5">'
            f"<title>attempt {number} resumed from epoch {resumed}</title></line>"
            f'<text class="resume-label" x="{_n(x(resumed + 0.5) + 4)}" y="{top + 12}">'
            f"attempt {number}</text>"
        )
    for key, _, values, colour in curves:
        for points in _polylines(values, x, y):
            if len(points) == 1:
                cx, cy = points[0].split(",")
                body.append(
                    f'<circle class="curve curve-{key}" cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>'
                )
            else:
                body.append(
                    f'<polyline class="curve curve-{key}" data-points="{len(points)}" '
                    f'points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2"/>'
                )
    # The legend in one row above the plot, where no curve or resume label can reach it.
    for column, (_, name, _, colour) in enumerate(curves):
        lx = LEFT + 170 * column
        body.append(
            f'<line x1="{lx}" x2="{lx + 24}" y1="12" y2="12" stroke="{colour}" stroke-width="3"/>'
            f'<text class="legend" x="{lx + 30}" y="16">{name}</text>'
        )
    last = (
        f"last training loss {figure.train[-1]:.4g}, validation loss {figure.val[-1]:.4g}"
        if figure.train and figure.val
        else "no epoch finished yet"
    )
    return _svg(
        "losses",
        height,
        f"{figure.title}: loss per epoch",
        f"{len(figure.train)} epochs; {last}; {len(figure.resumes)} resume points marked.",
        body,
    )
