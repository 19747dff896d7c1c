"""``qcog-mock runs | run | clock | deliveries``: a running server, seen from a terminal.

They talk to a server by URL (default the local one) with the admin's API key (``--api-key``,
else ``QCOG_API_KEY``, else the default key), print a table or, with ``--json``, the JSON the
server answered. Errors are one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import Any

import httpx

from qcog_mock.mockserver.clock import CLOCK_MODES, parse_duration
from qcog_mock.mockserver.dashboard.views import delivery_row, run_row
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, DEFAULT_PORT


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


class Server:
    def __init__(self, url: str, api_key: str | None) -> None:
        key = api_key or os.environ.get("QCOG_API_KEY") or DEFAULT_API_KEY
        self.url = url.rstrip("/")
        try:
            self.http = httpx.Client(
                base_url=self.url, headers={"Authorization": f"x-api-key {key}"}, timeout=600
            )
        except (httpx.InvalidURL, ValueError):
            raise ConsoleError(
                f"--url: {printable(url)!r} is not a URL such as {DEFAULTS['url']}"
            ) from None

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.http.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise ConsoleError(
                f"cannot reach {self.url} ({type(error).__name__}); is qcog-mock serve running?"
            ) from None
        try:
            body = answer.json()
        except ValueError:
            body = {"detail": answer.text[:200]}
        if answer.status_code >= 400:
            detail = body.get("detail") if isinstance(body, dict) else body
            raise ConsoleError(f"{method} {path} answered {answer.status_code}: {detail}")
        return body

    def project(self) -> str:
        project = self.call("GET", "/api/v1/whoami")["project_id"]
        if not project:
            raise ConsoleError("this key belongs to no project; use a project's key")
        return f"/api/v1/projects/{project}"

    def run_named(self, name: str) -> dict[str, Any]:
        path = f"{self.project()}/experiment_runs/{name}"
        return self.call("GET", path, params={"identifier": "name"})


def runs_table(runs: list[dict[str, Any]], clock: dict[str, Any]) -> str:
    lines = [f"simulated time {clock['now']}  ({clock['mode']})"]
    lines.append(f"{'run':<28} {'status':<10} {'attempt':>8} {'epoch':>11} {'runtime':>17}")
    for row in map(run_row, runs):
        lines.append(
            f"{row.name[:28]:<28} {row.status:<10} {row.attempt_text:>8} {row.epoch_text:>11} "
            f"{row.runtime_text:>17}"
        )
    return "\n".join(lines)


def show_runs(server: Server, args: argparse.Namespace) -> None:
    stop = threading.Event()
    while True:
        path = f"{server.project()}/experiment_runs"
        runs = server.call("GET", path, params={"descending": "false"})
        clock = server.call("GET", "/_emulator/clock")
        if args.json:
            print(json.dumps({"clock": clock, "runs": runs}, indent=2))
        else:
            table = printable(runs_table(runs, clock))
            print(("\033[2J\033[H" if args.watch else "") + table, flush=True)
        if not args.watch or stop.wait(1.0):
            return


def show_run(server: Server, args: argparse.Namespace) -> None:
    run = server.run_named(args.name)
    events = server.call("GET", "/_emulator/events", params={"run_id": run["id"]})
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


def clock(server: Server, args: argparse.Namespace) -> None:
    action = args.action or "show"
    if action == "advance":
        state = server.call("POST", "/_emulator/clock/advance", json={"seconds": args.duration})
    elif action == "to":
        state = server.call("POST", "/_emulator/clock/advance", json={"to": args.time})
    elif action == "mode":
        state = server.call("PUT", "/_emulator/clock", json={"mode": args.mode})
    else:
        state = server.call("GET", "/_emulator/clock")
    if args.json:
        print(json.dumps(state, indent=2))
    else:
        upcoming = state.get("next_event_at") or "nothing scheduled"
        print(f"{state['now']}  mode {state['mode']}  next event {upcoming}")


def deliveries(server: Server, args: argparse.Namespace) -> None:
    params = {"run_id": server.run_named(args.run)["id"]} if args.run else {}
    found = server.call("GET", "/_emulator/webhooks/deliveries", params=params)
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


COMMANDS = {"runs": show_runs, "run": show_run, "clock": clock, "deliveries": deliveries}


def run_command(args: argparse.Namespace) -> int:
    for name, default in DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    try:
        server = Server(args.url, args.api_key)
    except ConsoleError as error:
        print(f"qcog-mock {args.command}: {error}", file=sys.stderr)
        return 1
    try:
        COMMANDS[args.command](server, args)
    except ConsoleError as error:
        print(f"qcog-mock {args.command}: {printable(str(error))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.http.close()
    return 0


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes: what tenants wrote (names, URLs,
    error messages) never drives the operator's terminal."""
    return "".join(c if c == "\n" or c.isprintable() else ascii(c)[1:-1] for c in text)
