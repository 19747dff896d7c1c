"""``qcog-mock scenario list|run``: the scenario files, from a terminal.

Without paths: ``./scenarios`` where there is one, else the examples shipped in the package.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

USERS_FOLDER = Path("scenarios")


def shipped() -> Path:
    """The example scenarios installed with the package (the repository's ``scenarios/``)."""
    from importlib.resources import files

    return Path(str(files("qcog_mock.scenarios")))


def scenarios(args: argparse.Namespace) -> int:
    """List or run scenarios; the exit status is 1 if any failed or could not be read."""
    import asyncio

    from qcog_mock.mockserver.testing.scenarios import MODES, discover, load, run_scenario

    folders = args.paths or [USERS_FOLDER if USERS_FOLDER.is_dir() else shipped()]
    missing = [str(path) for path in folders if not Path(path).exists()]
    if missing:
        print(f"qcog-mock scenario: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 1
    if not args.paths and folders[0] != USERS_FOLDER:
        print(f"(no ./scenarios here: the examples shipped with qcog-mock, in {folders[0]})")
    loaded = []
    for path in discover(folders):
        try:
            loaded.append(load(path))
        except ValueError as error:
            print(error, file=sys.stderr)
            return 1
    if args.action == "list":
        for scenario in loaded:
            print(f"{scenario.path}  {scenario.title}")
        return 0
    modes = MODES if args.mode == "both" else (args.mode,)
    print(f"{'scenario':<40} {'mode':<11} {'result':<7} {'simulated':>10} {'wall':>7}")
    failures = []
    for scenario in loaded:
        for mode in modes:
            result = asyncio.run(run_scenario(scenario, mode))
            name = scenario.path.stem if scenario.path else scenario.title
            print(
                f"{name:<40} {mode:<11} {'pass' if result.passed else 'FAIL':<7} "
                f"{result.simulated_seconds / 3600:>9.1f}h {result.wall_seconds:>6.1f}s",
                flush=True,
            )
            if not result.passed:
                failures.append(f"{name} ({mode}): {result.message}")
    for failure in failures:
        print(f"\n{failure}")
    return 1 if failures else 0
