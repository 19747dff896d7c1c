"""What having qcog-mock installed costs an unrelated pytest run: the plugin's load time.

    .venv/bin/python bench/plugin_load.py [--rounds 7]

Runs pytest on a one-test file outside the repository with the plugin and with
``-p no:qcog_mock``, interleaved, and prints the fastest of each and their difference
(goal: ≤ 0.15 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(folder: Path, *extra: str) -> float:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        *extra,
        "test_one.py",
    ]
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        with_plugin, without = [], []
        for _ in range(args.rounds):
            with_plugin.append(one_run(folder))
            without.append(one_run(folder, "-p", "no:qcog_mock"))
    best_with, best_without = min(with_plugin), min(without)
    print(f"pytest on a one-test file, fastest of {args.rounds} interleaved rounds:")
    print(f"  with qcog-mock's plugin      {best_with:6.3f} s")
    print(f"  with -p no:qcog_mock         {best_without:6.3f} s")
    print(f"  plugin load cost             {best_with - best_without:+6.3f} s  (goal ≤ 0.15 s)")


if __name__ == "__main__":
    main()
