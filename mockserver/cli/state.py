"""``qcog-mock state save FILE | show FILE``: state snapshots (``mockserver/state.py``).

``save`` asks a running server through its control plane (``--url``, the admin's key), or reads a
stopped server's ``--data-dir``; ``show`` prints an archive's manifest. Errors are one line on
stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from qcog_mock.mockserver.cli.console import DEFAULTS, ConsoleError, connect, printable


def add_state_command(commands: Any) -> None:
    state = commands.add_parser(
        "state",
        help="save a server's whole state to one archive, or show an archive",
        description="save: from a running server (--url, the admin's --api-key) or a stopped "
        "one's --data-dir, write one archive (database, datasets, checkpoints, clock, webhook "
        "secret) that `serve --state FILE` and the pytest marker's state= start from. "
        "show: an archive's manifest.",
    )
    state.add_argument("action", choices=["save", "show"], help="save a state, or show one")
    state.add_argument("file", type=Path, help="the archive (.tar.gz)")
    state.add_argument("--url", help=f"the running server (default {DEFAULTS['url']})")
    state.add_argument("--api-key", help="an admin's key (default: QCOG_API_KEY)")
    state.add_argument(
        "--data-dir", type=Path, help="save from this stopped server's data dir instead"
    )


def state_command(args: argparse.Namespace) -> int:
    from qcog_mock.client._emulator import EmulatorError
    from qcog_mock.mockserver.platform import DataDirInUse
    from qcog_mock.mockserver.state import StateError, manifest

    try:
        if args.action == "show":
            print(json.dumps(manifest(args.file), indent=2))
            return 0
        if args.data_dir is not None:
            if args.url is not None:
                raise ConsoleError("give --url (a running server) or --data-dir, not both")
            found = save_stopped(args.data_dir, args.file)
        else:
            url = str(args.url or DEFAULTS["url"])
            found = asyncio.run(save_running(url, args.api_key, args.file))
    except (ConsoleError, EmulatorError, StateError, DataDirInUse, OSError) as error:
        print(f"qcog-mock state {args.action}: {printable(str(error))}", file=sys.stderr)
        return 1
    print(
        f"saved {args.file}: simulated time {found['clock']}, format version "
        f"{found['format_version']}; start from it with qcog-mock serve --state {args.file}"
    )
    return 0


async def save_running(url: str, api_key: str | None, destination: Path) -> dict[str, Any]:
    from qcog_mock.mockserver.state import manifest

    async with connect(url, api_key) as server:
        await server.save_state(destination)
    return manifest(destination)


def save_stopped(data_dir: Path, destination: Path) -> dict[str, Any]:
    """A stopped server's data dir, locked while it is read (a server started meanwhile waits
    for nothing: it is refused)."""
    from qcog_mock.mockserver.files import Files
    from qcog_mock.mockserver.platform import DataDirInUse, DataDirLock
    from qcog_mock.mockserver.state import save
    from qcog_mock.mockserver.store import Store

    database = data_dir / "qcog-mock.sqlite3"
    if not database.is_file():
        raise ConsoleError(f"{data_dir} holds no qcog-mock data (no qcog-mock.sqlite3)")
    try:
        lock = DataDirLock(data_dir)
    except DataDirInUse:
        raise ConsoleError(
            f"a server is running on {data_dir}: save through it with --url instead"
        ) from None
    try:
        store = Store(database)
        try:
            clock = store.saved_clock()
            if clock is None:
                raise ConsoleError(f"{data_dir} holds no clock: a server never ran on it")
            return save(store, Files(data_dir, create=False), clock, destination)
        finally:
            store.close()
    finally:
        lock.release()
