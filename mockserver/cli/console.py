"""``qcog-mock runs | run | clock | deliveries``: a running server, seen from a terminal.

They talk to a server by URL (default the local one) with the admin's API key (``--api-key``,
else ``QCOG_API_KEY``, else the default key), print a table or, with ``--json``, the JSON the
server answered. Errors are one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from qcog_mock.mockserver.clock import CLOCK_MODES, parse_duration
from qcog_mock.mockserver.rows import delivery_row, epoch_reached, run_row, shown
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, DEFAULT_PORT

if TYPE_CHECKING:  # the client (httpx) is imported when a command runs: --help stays quick
    from qcog_mock.client._emulator import EmulatorClient


class ConsoleError(Exception):
    pass


def seconds(text: str) -> float:
    """``90``, ``90s``, ``25m``, ``24h``, ``4d`` → seconds."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


DEFAULTS = {"url": f"http://127.0.0.1:{DEFAULT_PORT}", "api_key": None, "json": False}


def add_commands(commands: Any) -> None:
    """The console's subcommands, on the ``qcog-mock`` parser."""
    # The options may stand before or after `clock`'s action: defaults are filled in later,
    # so that an action's parser does not reset what was given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--url", help=f"the server (default {DEFAULTS['url']})")
    common.add_argument("--api-key", help="an admin's key (default: QCOG_API_KEY)")
    common.add_argument("--json", action="store_true", help="print the server's JSON")

    runs = commands.add_parser("runs", parents=[common], help="the runs of the key's project")
    runs.add_argument("--watch", action="store_true", help="refresh every second until Ctrl-C")
    run = commands.add_parser(
        "run", parents=[common], help="one run: its attempts and its timeline"
    )
    run.add_argument("name", help="the run's name")
    run.add_argument("--all", action="store_true", help="list every checkpoint.saved event too")
    clock = commands.add_parser(
        "clock", parents=[common], help="show, advance or switch the simulated clock"
    )
    actions = clock.add_subparsers(dest="action")
    actions.add_parser(
        "show", parents=[common], help="the simulated time, mode and next event (the default)"
    )
    advance = actions.add_parser(
        "advance",
        parents=[common],
        help="advance by a duration: 90s, 25m, 24h, 4d (manual or auto mode: it runs what "
        "falls due, then sets the clock there)",
    )
    advance.add_argument("duration", type=seconds)
    to = actions.add_parser("to", parents=[common], help="advance to an ISO-8601 time")
    to.add_argument("time")
    mode = actions.add_parser("mode", parents=[common], help="switch: auto, manual, realtime")
    mode.add_argument("mode", choices=CLOCK_MODES)
    deliveries = commands.add_parser(
        "deliveries", parents=[common], help="webhook deliveries and their attempts"
    )
    deliveries.add_argument("--run", help="only this run's (by name)")


def connect(url: str, api_key: str | None) -> EmulatorClient:
    import httpx

    from qcog_mock.client._emulator import EmulatorClient

    if "://" not in url:
        raise ConsoleError(
            f"--url: {printable(url)!r} has no scheme; give it whole, such as "
            f"http://{printable(url)}"
        )
    key = api_key or os.environ.get("QCOG_API_KEY") or DEFAULT_API_KEY
    try:
        return EmulatorClient(url, api_key=key, timeout=600)
    except (httpx.InvalidURL, ValueError):
        raise ConsoleError(
            f"--url: {printable(url)!r} is not a URL such as {DEFAULTS['url']}"
        ) from None


def runs_table(runs: list[dict[str, Any]], clock: dict[str, Any]) -> str:
    lines = [f"simulated time {clock['now']}  ({clock['mode']})"]
    lines.append(f"{'run':<28} {'status':<10} {'attempt':>8} {'epoch':>11} {'runtime':>17}")
    for row in map(run_row, runs):
        lines.append(
            f"{row.name[:28]:<28} {row.status:<10} {row.attempt_text:>8} {row.epoch_text:>11} "
            f"{row.runtime_text:>17}"
        )
    return "\n".join(lines)


async def show_runs(server: EmulatorClient, args: argparse.Namespace) -> None:
    while True:
        runs = await server.runs()
        clock = await server.clock()
        if args.json:
            print(json.dumps({"clock": clock, "runs": runs}, indent=2))
        else:
            table = printable(runs_table(runs, clock))
            print(("\033[2J\033[H" if args.watch else "") + table, flush=True)
        if not args.watch:
            return
        await asyncio.sleep(1.0)


async def show_run(server: EmulatorClient, args: argparse.Namespace) -> None:
    run = await server.run(args.name)
    events = await server.events(run["id"])
    if args.json:
        print(json.dumps({"run": run, "events": events}, indent=2))
        return
    print(printable(run_summary(run)))
    for note in run.get("notes") or []:
        print(printable(f"  note: {note}"))
    attempts = run.get("attempts") or []
    if attempts:
        header = f"{'attempt':<8} {'outcome':<10} {'epochs':>9}  {'started':<20}  {'ended':<20}"
        print(f"  {header}  reason")
        for attempt in attempts:
            print(printable("  " + attempt_line(attempt)))
    shown = events if args.all else [e for e in events if e["type"] != "checkpoint.saved"]
    left_out = len(events) - len(shown)
    note = f" ({left_out} checkpoint.saved left out: --all lists them)" if left_out else ""
    print(f"events{note}:")
    for event in shown:
        print(printable(f"  {event['time']}  {event['type']:<20} {event_details(event)}".rstrip()))


def run_summary(run: dict[str, Any]) -> str:
    attempts = run.get("attempts") or []
    attempt = f"attempt {run.get('current_attempt') or len(attempts)}"
    parts = [f"{run['name']}: {run['status']}", f"{attempt}/{run['max_attempts']}"]
    metrics = run.get("metrics") or {}
    reached = max(map(epoch_reached, attempts), default=None)
    epochs = metrics.get("epochs_completed", reached)
    if epochs is not None:
        parts.append(f"{epochs} epochs")
    if metrics.get("final_val_loss") is not None:
        parts.append(f"final val_loss {shown(metrics['final_val_loss'])}")
    return ", ".join(parts)


def attempt_line(attempt: dict[str, Any]) -> str:
    epochs = f"{attempt.get('resumed_from_epoch') or 0}→{epoch_reached(attempt)}"
    return (
        f"{attempt['number']:<8} {attempt.get('outcome') or 'running':<10} {epochs:>9}  "
        f"{attempt.get('started_at') or '':<20}  {attempt.get('ended_at') or '':<20}  "
        f"{attempt.get('reason') or ''}"
    ).rstrip()


def event_details(event: dict[str, Any]) -> str:
    keys = ("attempt", "epoch", "checkpoint", "train_loss", "val_loss", "reason")
    return "  ".join(f"{key}={shown(event[key])}" for key in keys if event.get(key) is not None)


async def clock(server: EmulatorClient, args: argparse.Namespace) -> None:
    action = args.action or "show"
    if action == "advance":
        state = await server.advance(args.duration)
    elif action == "to":
        state = await server.advance(to=args.time)
    elif action == "mode":
        state = await server.set_mode(args.mode)
    else:
        state = await server.clock()
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        upcoming = state.get("next_event_at") or "nothing scheduled"
        print(f"{state['now']}  mode {state['mode']}  next event {upcoming}")


async def deliveries(server: EmulatorClient, args: argparse.Namespace) -> None:
    found = await server.deliveries((await server.run(args.run))["id"] if args.run else None)
    if args.json:
        print(json.dumps(found, indent=2))
        return
    print(f"{'id':>5} {'type':<20} {'status':<10} {'attempts':>8}  url / next retry / last error")
    for row in map(delivery_row, found):
        detail = row["next_attempt_at"] or row["answer"]
        line = (
            f"{row['id']:>5} {row['type']:<20} {row['status']:<10} "
            f"{row['attempts']:>8}  {row['url']}  {detail}"
        )
        print(printable(line))


COMMANDS: dict[str, Callable[[EmulatorClient, argparse.Namespace], Awaitable[None]]] = {
    "runs": show_runs,
    "run": show_run,
    "clock": clock,
    "deliveries": deliveries,
}


def run_command(args: argparse.Namespace) -> int:
    for name, default in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    from qcog_mock.client._emulator import EmulatorError

    try:
        asyncio.run(command(args))
        sys.stdout.flush()
    except (ConsoleError, EmulatorError) as error:
        message = str(error)
        if isinstance(error, EmulatorError) and error.status == 401:
            message += (
                " Give the server's key with --api-key or QCOG_API_KEY (`qcog-mock serve` prints "
                f"it; without either the console sends the default, {DEFAULT_API_KEY})."
            )
        print(f"qcog-mock {args.command}: {printable(message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`| head`): nothing is wrong with the command. Later writes,
        # the interpreter's last flush included, go nowhere instead of raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE  # what a Unix tool ended by SIGPIPE reports
    return 0


async def command(args: argparse.Namespace) -> None:
    async with connect(args.url, args.api_key) as server:
        await COMMANDS[args.command](server, args)


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes: what tenants wrote (names, URLs,
    error messages) never drives the operator's terminal."""
    return "".join(c if c == "\n" or c.isprintable() else ascii(c)[1:-1] for c in text)
