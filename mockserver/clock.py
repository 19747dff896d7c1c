"""The emulator's one clock. This is the only module that reads wall time.

Simulated time is a float of seconds since the Unix epoch (UTC). Three modes:

- ``auto`` (default): time jumps to the next due event as soon as nothing is left to do at the
  current time, so a 96-hour job finishes as fast as its training computes;
- ``manual``: time moves only when advanced (``Simulation.advance_to``);
- ``realtime``: simulated time follows wall time × ``speed`` from the moment the mode was set.

The simulation kernel moves the clock (``set``); everything else only reads ``now()``.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import Literal

ClockMode = Literal["auto", "manual", "realtime"]
CLOCK_MODES: tuple[ClockMode, ...] = ("auto", "manual", "realtime")
DEFAULT_START = "2026-01-01T00:00:00Z"
LATEST = "9000-01-01T00:00:00Z"  # simulated time stays renderable (datetime ends at year 9999)
TIME_HEADER = "X-Qcog-Mock-Time"  # the simulated time, on every answer and webhook
MAX_SPEED = 1e7  # realtime: simulated seconds per wall second
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?[smhd])+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``25m``, ``24h``, ``4d`` or a sum such as ``1h30m`` or ``24h10s`` as
    seconds; ValueError otherwise. The one duration grammar: CLI, dashboard and scenarios."""
    text = text.strip()
    if _NUMBER.match(text):
        return float(text)
    if not _DURATION.match(text):
        raise ValueError(f"'{text}' is not a duration such as 90s, 25m, 1h30m, 24h or 4d")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


def parse_time(text: str) -> float:
    """An ISO-8601 time (``Z`` or an offset; naive means UTC) as epoch seconds."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def isoformat(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC with a ``Z``, to the millisecond when not whole."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def wall_time() -> float:
    """Wall-clock epoch seconds: for log lines and signature timestamps, never platform state."""
    return time.time()


def monotonic() -> float:
    """A wall-clock stopwatch reading, for durations (benchmarks, timeouts on real waits)."""
    return time.monotonic()


def pause(seconds: float) -> None:
    """Wait ``seconds`` of wall time: only for one process waiting on another (a worker at its
    lookahead bound), never for simulated time."""
    time.sleep(seconds)


class SimulatedClock:
    def __init__(self, start: float, mode: ClockMode = "auto", speed: float = 1.0) -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {list(CLOCK_MODES)}, not {mode!r}")
        if not 0 < speed <= MAX_SPEED:
            raise ValueError(f"speed must be greater than 0 and at most {MAX_SPEED:g}")
        self._lock = threading.Lock()
        self._now = start
        self.mode: ClockMode = mode
        self.speed = speed
        self._anchor = (start, time.monotonic())
        self._held = False
        self._latest = parse_time(LATEST)

    def now(self) -> float:
        with self._lock:
            if self.mode == "realtime" and not self._held:
                return max(self._now, self._realtime())
            return self._now

    def hold(self, held: bool) -> None:
        """While the kernel processes an event, time is that event's time, in every mode."""
        with self._lock:
            self._held = held

    def _realtime(self) -> float:
        simulated, wall = self._anchor
        return min(simulated + (time.monotonic() - wall) * self.speed, self._latest)

    def realtime_horizon(self) -> float:
        """Where wall time says simulated time should be now (realtime mode)."""
        with self._lock:
            return self._realtime()

    def seconds_until(self, when: float) -> float:
        """Wall seconds until simulated ``when`` in realtime mode."""
        with self._lock:
            return max(0.0, (when - self._realtime()) / self.speed)

    def set(self, when: float) -> bool:
        """Move time forward to ``when`` (never backwards); True if it moved."""
        with self._lock:
            moved = when > self._now
            self._now = max(self._now, when)
            return moved

    def set_mode(self, mode: ClockMode, speed: float | None = None) -> None:
        if mode not in CLOCK_MODES:
            raise ValueError(f"clock mode must be one of {list(CLOCK_MODES)}, not {mode!r}")
        if speed is not None and not 0 < speed <= MAX_SPEED:
            raise ValueError(f"speed must be greater than 0 and at most {MAX_SPEED:g}")
        with self._lock:
            if self.mode == "realtime":
                self._now = max(self._now, self._realtime())
            self.mode = mode
            if speed is not None:
                self.speed = speed
            self._anchor = (self._now, time.monotonic())
