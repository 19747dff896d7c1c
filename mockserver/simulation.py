"""A discrete-event kernel on the simulated clock.

Work is either a *callback* (run by the kernel thread) or a *process*: a thread running a blocking
function — here, a training attempt — that waits on simulated time with ``sleep_until``. Exactly
one piece of work runs at a time: the kernel hands a baton to a process and waits until it sleeps
again or ends. Due work runs in ``(time, key, sequence)`` order, and the clock moves only when
nothing is left to do at the current time. Hence:

- the timeline is a function of the submissions alone, not of how fast the machine computes;
- concurrent runs interleave in simulated-time order, ties broken by their keys;
- a process computing an epoch holds time still until it has finished.

How far the kernel may go is the clock mode's business: ``auto`` — everything due, at once;
``manual`` — up to the target of the last ``advance_to``; ``realtime`` — up to wall time × speed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from qcog_mock.mockserver.clock import SimulatedClock

logger = logging.getLogger(__name__)

# Simulated times are compared to the microsecond: a time read back from its ISO form (or summed
# from a duration) may differ from the exact float by far less than that.
RESOLUTION = 1e-6


class SimulationStopped(BaseException):
    """Raised inside a sleeping process when the emulator shuts down.

    A ``BaseException`` so that the trainer and user code do not catch it as an error: the work is
    not failed, only interrupted, and is picked up again when the emulator restarts.
    """


@dataclass(order=True)
class _Entry:
    time: float
    key: str
    seq: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    taken: bool = field(default=False, compare=False)  # popped by the kernel, about to run


class Process:
    """A thread that runs only while the kernel lets it, and waits on simulated time."""

    def __init__(self, sim: Simulation, key: str, body: Callable[[Process], None]) -> None:
        self.sim = sim
        self.key = key
        self._body = body
        self._go = threading.Event()
        self._yielded = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"qcog-mock {key}", daemon=True)
        self._wake: _Entry | None = None
        self._interrupt: BaseException | None = None
        self.done = threading.Event()

    @property
    def now(self) -> float:
        return self.sim.clock.now()

    def _resume(self) -> None:
        """Kernel side: hand over the baton and wait for it back."""
        self._wake = None
        if self.done.is_set():
            return  # a process that has ended has no baton to take
        if not self._thread.is_alive() and not self.done.is_set():
            self._thread.start()
        else:
            self._go.set()
        self._yielded.wait()
        self._yielded.clear()

    def _main(self) -> None:
        try:
            self._body(self)
        except SimulationStopped:
            pass
        except BaseException:
            logger.exception("Process %s failed", self.key)
        finally:
            self.done.set()
            self._yielded.set()

    def sleep_until(self, when: float) -> None:
        """Give up the baton until simulated time ``when`` (at least now)."""
        self.check()
        self._wake = self.sim._schedule(max(when, self.now), self.key, self._resume)
        self._yielded.set()
        self._go.wait()
        self._go.clear()
        self.check()

    def wait_off_baton(self, ready: Callable[[], bool], hold: float) -> None:
        """Give up the baton while waiting (wall time) for ``ready()`` — which should block
        briefly — and take it back once it is true.

        Meanwhile the kernel runs what is due before ``hold``, the earliest simulated time at
        which this process can act again, and nothing after it: the timeline stays what it
        would have been had the process never waited. An interrupt ends the wait (and is then
        raised).
        """
        self.check()
        if ready():
            return
        with self.sim._cond:
            self.sim._holds[self] = hold
            self.sim._cond.notify_all()
        self._yielded.set()
        try:
            while not ready():
                if self.sim.stopped:
                    raise SimulationStopped
                if self._interrupt is not None:
                    break
        finally:
            with self.sim._cond:
                del self.sim._holds[self]
                stopping = self.sim.stopped
                if not stopping:
                    self._wake = self.sim._schedule_locked(self.now, self.key, self._resume)
                self.sim._cond.notify_all()
        if stopping:  # ready as the kernel stopped: no one would hand the baton back
            raise SimulationStopped
        self._go.wait()
        self._go.clear()
        self.check()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process's thread to end; True if it has (or never
        started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def check(self) -> None:
        """Raise a pending interrupt (cancellation, shutdown) at a safe point."""
        if self.sim.stopped:
            raise SimulationStopped
        if self._interrupt is not None:
            error, self._interrupt = self._interrupt, None
            raise error

    def interrupt(self, error: BaseException) -> None:
        """Make the process raise ``error`` at its next safe point, now if it sleeps."""
        with self.sim._cond:
            self._interrupt = error
            # A wake-up the kernel has already taken will resume the process, which then meets
            # the interrupt; scheduling a second one would resume a finished process.
            wake = self._wake
            if wake is not None and not wake.cancelled and not wake.taken:
                wake.cancelled = True
                self._wake = self.sim._schedule_locked(self.sim.clock.now(), self.key, self._resume)
            self.sim._cond.notify_all()


class Simulation:
    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self._cond = threading.Condition()
        self._queue: list[_Entry] = []
        self._seq = itertools.count()
        self._target = clock.now()
        self._working = False
        # Processes waiting off the baton, each with the time the kernel may not reach.
        self._holds: dict[Process, float] = {}
        self._thread: threading.Thread | None = None
        self.stopped = False
        self.on_time_change: Callable[[float], None] | None = None

    # Scheduling ---------------------------------------------------------------------------

    def call_at(self, when: float, key: str, callback: Callable[[], None]) -> None:
        """Run ``callback`` in the kernel at simulated time ``when`` (at least now)."""
        self._schedule(max(when, self.clock.now()), key, callback)

    def spawn(self, when: float, key: str, body: Callable[[Process], None]) -> Process:
        """Start a process running ``body(process)`` at simulated time ``when``."""
        process = Process(self, key, body)
        process._wake = self._schedule(max(when, self.clock.now()), key, process._resume)
        return process

    def _schedule(self, when: float, key: str, action: Callable[[], None]) -> _Entry:
        with self._cond:
            return self._schedule_locked(when, key, action)

    def _schedule_locked(self, when: float, key: str, action: Callable[[], None]) -> _Entry:
        entry = _Entry(when, key, next(self._seq), action)
        heapq.heappush(self._queue, entry)
        if self._thread is None and not self.stopped:
            self._thread = threading.Thread(target=self._loop, name="qcog-mock kernel", daemon=True)
            self._thread.start()
        self._cond.notify_all()
        return entry

    # The kernel ---------------------------------------------------------------------------

    def _horizon(self) -> float:
        mode = self.clock.mode
        if mode == "auto":
            horizon = math.inf
        elif mode == "realtime":
            horizon = self.clock.realtime_horizon()
        else:
            horizon = self._target + RESOLUTION
        if self._holds:  # strictly before the earliest hold
            horizon = min(horizon, min(self._holds.values()) - 2 * RESOLUTION)
        return horizon

    def _next(self) -> _Entry | None:
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0] if self._queue else None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self.stopped:
                        return
                    entry = self._next()
                    if entry is not None and entry.time <= self._horizon():
                        heapq.heappop(self._queue)
                        entry.taken = True
                        self._working = True
                        break
                    self._working = False
                    self._cond.notify_all()
                    wait = None
                    if entry is not None and self.clock.mode == "realtime":
                        wait = self.clock.seconds_until(entry.time)
                    self._cond.wait(timeout=wait)
            self._set_time(entry.time)
            self.clock.hold(True)
            try:
                entry.action()
            except Exception:
                logger.exception("Simulation callback %s failed", entry.key)
            finally:
                self.clock.hold(False)

    def _set_time(self, when: float) -> None:
        if self.clock.set(when) and self.on_time_change is not None:
            self.on_time_change(when)

    # Control ------------------------------------------------------------------------------

    def _idle_through(self, when: float) -> bool:
        # A process waiting off the baton is work in progress: it will act again.
        entry = self._next()
        return (
            not self._working
            and not self._holds
            and (entry is None or entry.time > when + RESOLUTION)
        )

    def advance_to(self, when: float) -> None:
        """Process everything due up to ``when``, then set the clock to ``when``.

        In ``manual`` mode it is how time moves. In ``auto`` mode time jumps from event to event
        on its own, and would stay put where none is due: asked to go to ``when``, it goes
        there too once nothing before it is left (an advance is never a silent no-op).
        """
        with self._cond:
            if when > self._target:
                self._target = when
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.stopped or self._idle_through(when))
        mode = self.clock.mode
        if mode == "manual" or (mode == "auto" and not self.stopped):
            self._set_time(when)

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is due up to the mode's horizon; False if ``timeout`` ran out."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: self.stopped or self._idle_through(self._horizon()), timeout
            )

    def next_event_time(self) -> float | None:
        with self._cond:
            entry = self._next()
            return entry.time if entry else None

    def wake(self) -> None:
        """Re-read the clock mode (after it changed)."""
        with self._cond:
            self._target = max(self._target, self.clock.now())
            self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the kernel; sleeping processes raise ``SimulationStopped``."""
        with self._cond:
            self.stopped = True
            pending = [e for e in self._queue if not e.cancelled]
            self._queue.clear()
            self._cond.notify_all()
        for entry in pending:  # wake sleeping processes so that their threads end
            owner = getattr(entry.action, "__self__", None)
            if isinstance(owner, Process) and owner._thread.is_alive():
                owner._go.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
