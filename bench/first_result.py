"""The user's view of start-up: what the first qcog test costs in a fresh pytest process.

    .venv/bin/python bench/first_result.py [--rounds 5]

Runs a fresh ``pytest`` on a file of N tiny qcog tests (3 epochs on 300 rows, each trained to
its end through the plugin's ``qcog_platform``), N = 1, 2 and 10, and on a file with one empty
test, interleaved; prints the fastest of each and what the qcog tests add (goals: the first
≤ 1.0 s more than the empty run, each further one ≤ 0.15 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY = """
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

DATA = synthetic_panel(dates=1, assets=300, features=4, seed=1).to_csv(index=False).encode()
PARAMS = {{
    "hyperparameters": {{
        "hsm_model": "general", "epochs": 3, "batch_size": 32, "seed": 3, "targets": TARGET,
        "input_operator_count": 4, "output_operator_count": 1, "hilbert_space_dims": 2,
        "optimizer_config": {{"type": "Adam", "default_params": {{"lr": 0.02}}}},
        "loss_fn_config": {{"type": "MSELoss"}},
    }},
    "timeout": 3600,
}}
{tests}
"""
ONE = """

async def test_tiny_{i}(qcog_platform):
    async with qcog_platform.story() as story:
        await story.upload("data", DATA)
        await story.submit("job", "data", PARAMS)
        await story.advance(3600)
        assert (await story.run("job"))["status"] == "completed"
"""
EMPTY = "def test_nothing():\n    assert True\n"


def one_run(folder: Path, name: str) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest {name} failed:\n{done.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    counts = (1, 2, 10)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
        (folder / "test_empty.py").write_text(EMPTY)
        for n in counts:
            tests = "".join(ONE.format(i=i) for i in range(n))
            (folder / f"test_tiny_{n}.py").write_text(TINY.format(tests=tests))
        files = ["test_empty.py", *(f"test_tiny_{n}.py" for n in counts)]
        times: dict[str, list[float]] = {f: [] for f in files}
        for _ in range(args.rounds):
            for file in files:
                times[file].append(one_run(folder, file))
    best = {f: min(t) for f, t in times.items()}
    empty = best["test_empty.py"]
    print(f"a fresh pytest process, fastest of {args.rounds} interleaved rounds:")
    print(f"  one empty test                 {empty:6.2f} s")
    for n in counts:
        print(f"  {n:>2} tiny qcog test(s)           {best[f'test_tiny_{n}.py']:6.2f} s")
    first = best["test_tiny_1.py"] - empty
    further = (best["test_tiny_10.py"] - best["test_tiny_1.py"]) / 9
    print(f"  the first qcog test adds       {first:+6.2f} s  (goal ≤ 1.0 s)")
    print(f"  each further test adds         {further:+6.2f} s  (goal ≤ 0.15 s)")


if __name__ == "__main__":
    main()
