"""The ``qcog-mock`` command.

qcog-mock demo  [--rows 20000] [--epochs 100]
qcog-mock exec [--compat auto|on|off] -- COMMAND [ARGS…]
qcog-mock listen --secret whsec_… [--port 8080]
qcog-mock scenario list|run [PATHS] [--mode in-process|socket|both]
qcog-mock serve [--host 127.0.0.1] [--port 8001] [--clock auto|manual|realtime] [--speed 60]
                [--epoch-seconds S] [--data-dir ./.qcog-mock] [--start-time ISO|now] [--workers N]
                [--seed FILE.toml | --state FILE.tar.gz]
qcog-mock state save FILE [--url URL | --data-dir DIR] | show FILE
qcog-mock runs [--watch] | run NAME | clock [show|advance 4d|to ISO|mode M] | deliveries [--run N]
                [--url http://127.0.0.1:8001] [--api-key KEY] [--json]      (a running server)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from qcog_mock import __version__
from qcog_mock.compat import COMPAT_MODES, pythonpath_for
from qcog_mock.mockserver.cli.console import COMMANDS, add_commands, run_command
from qcog_mock.mockserver.cli.scenario import scenarios
from qcog_mock.mockserver.cli.serve import MIB, end_process, serve
from qcog_mock.mockserver.cli.state import add_state_command, state_command
from qcog_mock.mockserver.clock import (
    CLOCK_MODES,
    DEFAULT_START,
    MAX_SPEED,
    parse_time,
    wall_time,
)
from qcog_mock.mockserver.settings import DEFAULT_PORT, Settings


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _speed(text: str) -> float:
    value = _positive(text)
    if value > MAX_SPEED:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SPEED:g}, not {text}")
    return value


def _start_time(text: str) -> float:
    if text == "now":
        return float(int(wall_time()))
    try:
        return parse_time(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO-8601 time or 'now'") from None


DESCRIPTION = """\
A local emulator of Qognitive's QCML platform (API v1): real Hilbert Space Model training on a
simulated clock, so that a four-day job with retries runs end to end in seconds, offline.
Start with `qcog-mock demo` (the offline demo), `qcog-mock serve` (the API on
http://127.0.0.1:8001) or, in tests, the pytest plugin's fixtures (README: Testing your code).
"""


class _Help(argparse.RawDescriptionHelpFormatter):
    """Says each option's default, unless its help already does or there is none worth saying."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        quiet = action.default in (None, False, [], argparse.SUPPRESS)
        if "default" in text or quiet or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".strip()


class _Parser(argparse.ArgumentParser):
    """Every parser of the command, subcommands included (they are made by this class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="qcog-mock", description=DESCRIPTION)
    root.add_argument("--version", action="version", version=f"qcog-mock {__version__}")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator's HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="the port to listen on")
    serve.add_argument(
        "--clock",
        choices=CLOCK_MODES,
        default=Settings.clock,
        help="auto: time jumps to the next event; manual: moves when advanced; realtime: "
        "wall time × --speed",
    )
    serve.add_argument("--speed", type=_speed, default=Settings.speed, help="realtime speed factor")
    serve.add_argument(
        "--epoch-seconds", type=_positive, help="simulated seconds per epoch, for every run"
    )
    serve.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".qcog-mock"),
        help="where the database, datasets and checkpoints are kept (one server at a time)",
    )
    start = serve.add_mutually_exclusive_group()
    start.add_argument(
        "--seed",
        type=Path,
        metavar="FILE",
        help="a new data dir starts from this seed file (TOML: projects, users and keys, "
        "datasets, runs, deployments), applied before the first request is answered",
    )
    start.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="a new data dir starts from this archive (qcog-mock state save); the file is "
        "only read",
    )
    serve.add_argument(
        "--start-time",
        type=_start_time,
        help=f"simulated start time of a new data dir (default {DEFAULT_START}; 'now' for wall)",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=_positive,
        default=Settings.max_upload_bytes / MIB,
        help="dataset upload size cap",
    )
    serve.add_argument(
        "--workers",
        type=_count,
        default=Settings.workers,
        help=f"attempts computing at once, each in a worker process (default {Settings.workers})",
    )
    serve.add_argument(
        "--executor",
        default="local",
        help="where workers run: local (processes on this machine) or dask://HOST:PORT",
    )
    serve.add_argument(
        "--keep-checkpoints",
        type=_count,
        default=Settings.keep_checkpoints,
        metavar="N",
        help="checkpoints a run keeps: its latest N, plus its best and every deployed one",
    )
    serve.add_argument(
        "--worker-timeout",
        type=_positive,
        default=Settings.worker_wall_seconds,
        help="wall seconds one epoch may take before its worker is stopped (attempt crashed)",
    )
    serve.add_argument(
        "--torch-threads",
        type=_count,
        default=Settings.worker_threads,
        help="torch threads per worker",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        type=str.lower,
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's and the emulator's log level",
    )
    serve.add_argument(
        "--webhook-url", action="append", default=[], help="a server-wide webhook (repeatable)"
    )
    serve.add_argument(
        "--webhook-secret",
        help="whsec_… signing secret (default: QCOG_MOCK_WEBHOOK_SECRET, or kept)",
    )
    serve.add_argument(
        "--webhook-checkpoints", action="store_true", help="also post checkpoint.saved events"
    )
    serve.add_argument(
        "--allow-remote-webhooks", action="store_true", help="allow webhook URLs off this machine"
    )
    serve.add_argument(
        "--dataset-root",
        action="append",
        default=[],
        type=Path,
        help="a folder whose files datasets and batch inferences may name by path (repeatable; "
        "default: none, uploads only)",
    )
    serve.add_argument(
        "--s3-root",
        type=Path,
        metavar="DIR",
        help="read s3://bucket/key as DIR/bucket/key, offline (default: none; S3 datasets are "
        "stored as references and a run on one fails at once, saying so)",
    )
    serve.add_argument(
        "--admin-username", help="the admin's basic-auth name (default: QCOG_MOCK_ADMIN_USERNAME)"
    )
    serve.add_argument(
        "--admin-password", help="the admin's password (default: QCOG_MOCK_ADMIN_PASSWORD)"
    )
    serve.add_argument(
        "--allow-default-credentials",
        action="store_true",
        help="listen beyond loopback even with the well-known default key or admin/admin",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients use to reach this server, beside loopback names and IP "
        "addresses (repeatable); other Host headers are refused (DNS rebinding)",
    )
    serve.add_argument(
        "--max-json-mb",
        type=_positive,
        default=Settings.max_json_bytes / MIB,
        help="JSON body size cap",
    )
    scenario = commands.add_parser("scenario", help="list or run scenario files")
    scenario.add_argument("action", choices=["list", "run"], help="list them, or run each")
    scenario.add_argument(
        "paths",
        nargs="*",
        help="files or folders (default: ./scenarios, else the examples shipped with qcog-mock)",
    )
    scenario.add_argument(
        "--mode",
        choices=["in-process", "socket", "both"],
        default="in-process",
        help="how each scenario reaches its emulator",
    )
    listen = commands.add_parser("listen", help="receive and verify webhooks, print them")
    listen.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    listen.add_argument("--port", type=int, default=8080, help="the port to listen on")
    listen.add_argument("--secret", required=True, help="the whsec_… secret `serve` prints")
    run = commands.add_parser(
        "exec",
        help="run a command that imports qcogclient/qcog_types, with qcog-mock's stand-ins",
        description="Runs COMMAND with qcog-mock's qcogclient/qcog_types stand-ins importable: "
        "auto (default) only where no real package is installed, on even over real ones.",
    )
    run.add_argument(
        "--compat", choices=COMPAT_MODES, default="auto", help="when the stand-ins are used"
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS…]")
    add_commands(commands)
    add_state_command(commands)
    demo = commands.add_parser("demo", help="the long-running-jobs guide's job, offline")
    demo.add_argument("--rows", type=int, default=20_000, help="rows of the synthetic dataset")
    demo.add_argument("--epochs", type=int, default=100, help="epochs the job trains")
    demo.add_argument(
        "--picture",
        type=Path,
        default=Path("qcog-mock-demo.png"),
        help="where to write the run's picture (PNG)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="serve the emulator over HTTP and keep it up after the job: prints the dashboard",
    )
    demo.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="with --serve (0: any free port)"
    )
    return root


def listen(args: argparse.Namespace) -> None:
    from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver, print_event
    from qcog_mock.mockserver.webhooks.signing import check_secret

    try:
        check_secret(args.secret)
    except ValueError as error:
        raise SystemExit(f"--secret: {error}") from None
    receiver = WebhookReceiver(args.secret, host=args.host, port=args.port, on_event=print_event)
    print(f"Listening for verified webhooks on {receiver.url} (Ctrl-C to stop)", flush=True)
    with receiver, contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


PYTHON_NAMES = re.compile(r"^python(3(\.\d+)?)?$")


def run_with_compat(args: argparse.Namespace) -> None:
    """Replace this process with the command, its ``PYTHONPATH`` showing the stand-ins."""
    command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not command:
        raise SystemExit(
            "qcog-mock exec: name the command to run, e.g. qcog-mock exec -- python x.py"
        )
    if PYTHON_NAMES.match(command[0]):
        # The Python that has qcog-mock installed, not whichever one PATH finds first (outside
        # an activated virtualenv, the system's, which cannot import qcog_mock).
        command = [sys.executable, *command[1:]]
    env = dict(os.environ)
    path = pythonpath_for(args.compat, env.get("PYTHONPATH"))
    if path is None:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = path
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        raise SystemExit(f"qcog-mock exec: cannot run {command[0]!r}: {error.strerror}") from None


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "serve":
        serve(args)
        end_process()
    elif args.command == "listen":
        listen(args)
    elif args.command in COMMANDS:
        raise SystemExit(run_command(args))
    elif args.command == "exec":
        run_with_compat(args)
    elif args.command == "state":
        raise SystemExit(state_command(args))
    elif args.command == "scenario":
        raise SystemExit(scenarios(args))
    elif args.command == "demo":
        from qcog_mock.mockserver.cli.demo import run_demo

        run_demo(args.rows, args.epochs, args.picture, args.port if args.serve else None)
        if args.serve:
            end_process()
