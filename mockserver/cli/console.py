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
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from qcog_mock.mockserver.clock import CLOCK_MODES, parse_duration
from qcog_mock.mockserver.rows import delivery_row, run_row
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
    run = commands.add_parser("run", parents=[common], help="one run's timeline")
    run.add_argument("name")
    clock = commands.add_parser(
        "clock", parents=[common], help="show, advance or switch the simulated clock"
    )
    actions = clock.add_subparsers(dest="action")
    actions.add_parser("show", parents=[common])
    advance = actions.add_parser(
        "advance", parents=[common], help="advance by a duration: 90s, 25m, 24h, 4d"
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
    attempt = f"{run.get('current_attempt')}/{run['max_attempts']}"
    print(printable(f"{run['name']}: {run['status']}, attempt {attempt}"))
    for event in events:
        details = {
            k: v
            for k, v in event.items()
            if k in ("attempt", "epoch", "reason", "checkpoint", "val_loss")
        }
        extra = "  ".join(f"{k}={v}" for k, v in details.items())
        print(printable(f"  {event['time']}  {event['type']:<20} {extra}"))


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
    except (ConsoleError, EmulatorError) as error:
        print(f"qcog-mock {args.command}: {printable(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


async def command(args: argparse.Namespace) -> None:
    async with connect(args.url, args.api_key) as server:
        await COMMANDS[args.command](server, args)


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes: what tenants wrote (names, URLs,
    error messages) never drives the operator's terminal."""
    return "".join(c if c == "\n" or c.isprintable() else ascii(c)[1:-1] for c in text)
