"""The clock and the discrete-event kernel."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path

import pytest

from qcog_mock import mockserver
from qcog_mock.mockserver.clock import SimulatedClock, isoformat, parse_duration, parse_time
from qcog_mock.mockserver.simulation import Process, Simulation, SimulationStopped

WALL_TIME = re.compile(
    r"\btime\.(time|monotonic|perf_counter)\(|\bdatetime\.(now|utcnow)\(|\bimport time\b"
)


def test_only_the_clock_module_reads_wall_time() -> None:
    package = Path(mockserver.__file__).parent
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "clock.py" and WALL_TIME.search(path.read_text())
    ]
    assert offenders == []


def test_iso_round_trip() -> None:
    assert isoformat(parse_time("2026-01-01T00:00:00Z")) == "2026-01-01T00:00:00Z"
    assert isoformat(parse_time("2026-01-01T01:00:00+01:00")) == "2026-01-01T00:00:00Z"
    assert isoformat(parse_time("2026-01-01T00:00:01.5")) == "2026-01-01T00:00:01.500Z"


def test_the_clock_never_goes_back_and_validates_modes() -> None:
    clock = SimulatedClock(100.0, "manual")
    clock.set(50.0)
    assert clock.now() == 100.0
    with pytest.raises(ValueError, match="clock mode"):
        clock.set_mode("warp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="speed"):
        SimulatedClock(0.0, "realtime", speed=0)


def sleeper(log: list[tuple[float, str]], name: str, step: float, count: int):
    def body(process: Process) -> None:
        for _ in range(count):
            process.sleep_until(process.now + step)
            log.append((process.now, name))

    return body


def test_manual_advance_processes_exactly_what_is_due_in_key_order() -> None:
    sim = Simulation(SimulatedClock(0.0, "manual"))
    log: list[tuple[float, str]] = []
    sim.spawn(0, "b", sleeper(log, "b", 2, 3))
    sim.spawn(0, "a", sleeper(log, "a", 3, 2))
    sim.advance_to(4)
    assert log == [(2, "b"), (3, "a"), (4, "b")]
    assert sim.clock.now() == 4
    sim.advance_to(100)
    assert log[3:] == [(6, "a"), (6, "b")]  # a tie at 6 s: key order
    sim.close()


def test_auto_mode_gives_the_manual_timeline_at_once() -> None:
    timelines = []
    for mode in ("manual", "auto"):
        sim = Simulation(SimulatedClock(0.0, mode))  # type: ignore[arg-type]
        log: list[tuple[float, str]] = []
        sim.spawn(0, "x", sleeper(log, "x", 5, 3))
        sim.spawn(1, "y", sleeper(log, "y", 4, 3))
        if mode == "manual":
            sim.advance_to(1000)
        else:
            assert sim.settle(timeout=30)
        timelines.append(log)
        sim.close()
    assert timelines[0] == timelines[1]


def test_an_advance_in_auto_mode_runs_what_is_due_and_moves_the_clock_there() -> None:
    # Auto mode jumps from event to event on its own; an advance past the last one still
    # moves time (it used to leave the clock where it was: a silent no-op).
    sim = Simulation(SimulatedClock(0.0, "auto"))
    log: list[tuple[float, str]] = []
    sim.spawn(0, "x", sleeper(log, "x", 5, 2))
    sim.advance_to(86400)
    assert log == [(5, "x"), (10, "x")]
    assert sim.clock.now() == 86400
    sim.advance_to(100)  # already past: the clock never goes back
    assert sim.clock.now() == 86400
    sim.close()


def test_callbacks_run_in_time_order_and_never_in_the_past() -> None:
    sim = Simulation(SimulatedClock(10.0, "manual"))
    seen: list[float] = []
    sim.call_at(30, "k", lambda: seen.append(sim.clock.now()))
    sim.call_at(5, "k", lambda: seen.append(sim.clock.now()))  # in the past: runs now
    sim.advance_to(40)
    assert seen == [10.0, 30.0]
    sim.close()


def test_interrupt_wakes_a_sleeping_process_at_the_current_time() -> None:
    sim = Simulation(SimulatedClock(0.0, "manual"))
    caught: list[float] = []

    class Stop(Exception):
        pass

    def body(process: Process) -> None:
        try:
            process.sleep_until(10_000)
        except Stop:
            caught.append(process.now)

    process = sim.spawn(0, "p", body)
    sim.advance_to(50)
    process.interrupt(Stop())
    assert process.done.wait(10)
    assert caught == [50]
    sim.close()


def test_close_releases_sleeping_processes() -> None:
    sim = Simulation(SimulatedClock(0.0, "manual"))
    stopped = threading.Event()

    def body(process: Process) -> None:
        try:
            process.sleep_until(10)
        except SimulationStopped:
            stopped.set()
            raise

    process = sim.spawn(0, "p", body)
    sim.advance_to(1)
    sim.close()
    assert process.done.wait(10) and stopped.is_set()


def test_realtime_mode_follows_wall_time_times_speed() -> None:
    clock = SimulatedClock(0.0, "realtime", speed=1e7)
    sim = Simulation(clock)
    log: list[tuple[float, str]] = []
    process = sim.spawn(0, "r", sleeper(log, "r", 3600, 3))
    assert process.done.wait(30)  # three simulated hours at 10⁷×: about a millisecond
    # Time ran on between the clock's creation and the spawn; from there, exact steps.
    times = [t for t, _ in log]
    assert [b - a for a, b in itertools.pairwise(times)] == [3600, 3600]
    assert times[0] >= 3600 and clock.now() >= times[-1]
    sim.close()


def test_advancing_to_an_events_rounded_time_processes_it() -> None:
    # An event at a fractional millisecond, reached through the millisecond-rounded ISO time.
    sim = Simulation(SimulatedClock(1_767_225_605.0, "manual"))
    seen: list[float] = []
    event_time = 1_767_225_605.0205
    sim.call_at(event_time, "k", lambda: seen.append(sim.clock.now()))
    assert isoformat(event_time) == "2026-01-01T00:00:05.020Z"  # below the event
    sim.advance_to(parse_time(isoformat(event_time)))
    assert seen == []  # rounded down: not reached
    sim.advance_to(parse_time("2026-01-01T00:00:05.021Z"))  # rounded up, as clock_state gives it
    assert seen == [event_time]
    sim.close()


def test_a_process_waiting_off_the_baton_lets_earlier_work_run_and_ends_at_a_stop() -> None:
    sim = Simulation(SimulatedClock(0.0, "auto", 1.0))
    ran: list[float] = []
    gate = threading.Event()
    calls = itertools.count()
    ended: list[BaseException] = []

    def ready() -> bool:  # not at once; then, once the gate opens
        return next(calls) > 0 and gate.wait()

    def waiting(process: Process) -> None:
        try:
            process.wait_off_baton(ready, hold=10.0)
        except SimulationStopped as stop:
            ended.append(stop)
            raise

    # Spawned first: the kernel starts with the first thing scheduled, and in auto mode it would
    # run work scheduled before the process (at 5 and 15) before the process is even there.
    process = sim.spawn(0.0, "waiting", waiting)
    early = threading.Event()

    def other() -> None:
        ran.append(sim.clock.now())
        early.set()

    for when in (5.0, 15.0):  # another process's work: before and after the hold
        sim.call_at(when, f"other-{when}", other)
    assert early.wait(30)
    assert sim.settle(timeout=0.5) is False  # it is waiting: not settled
    assert ran == [5.0]  # what is due before the hold ran; what is after it did not
    # The wait ends just as the server stops: the process must end, not wait for a baton.
    sim.close()
    gate.set()
    assert process.join(5)
    assert len(ended) == 1


def test_one_duration_grammar_for_cli_dashboard_and_scenarios() -> None:
    assert [parse_duration(t) for t in ("90", "2.5", "90s", "25m", "24h", "4d")] == [
        90,
        2.5,
        90,
        1500,
        86_400,
        345_600,
    ]
    assert parse_duration("1h30m") == 5400 and parse_duration(" 24h10s ") == 86_410
    for bad in ("", "h", "1h30", "1x", "-5m", "4 d", "soon"):
        with pytest.raises(ValueError, match="is not a duration such as 90s, 25m, 1h30m"):
            parse_duration(bad)
