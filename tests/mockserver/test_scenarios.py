"""The scenario runner: loading, failure messages, the CLI. (The scenarios themselves run as test
items collected from ``scenarios/`` in both modes.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qcog_mock.mockserver.testing.scenarios import discover, load, run_scenario, seconds

SCENARIOS = Path(__file__).parents[2] / "scenarios"
BROKEN = """
title = "A deliberately broken expectation"
[[runs]]
name = "job"
timeout = "1h"
retries = 2
epoch_seconds = 1500
[[steps]]
submit = "job"
[[steps]]
advance = "10h"
[steps.expect.job]
attempts = ["timed_out", "completed"]
"""


def test_there_are_at_least_ten_scenarios_and_all_load() -> None:
    paths = discover([SCENARIOS])
    assert len(paths) >= 10
    titles = [load(path).title for path in paths]
    assert len(set(titles)) == len(titles)


@pytest.mark.torch
async def test_a_broken_expectation_names_the_step_expected_and_actual(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    result = await run_scenario(load(path), "in-process")
    assert not result.passed
    message = result.message
    assert "At step 2 (advance 10h), run 'job': attempt outcomes" in message
    assert "expected: ['timed_out', 'completed']" in message
    assert "actual:   ['timed_out', 'timed_out', 'completed']" in message
    assert "last events:" in message and "run.completed" in message


def test_bad_scenario_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BROKEN.replace('submit = "job"', 'submit = "nobody"'))
    with pytest.raises(ValueError, match="names no run"):
        load(path)
    path.write_text(BROKEN.replace("retries = 2", "retries = 2\nspeed = 3"))
    with pytest.raises(ValueError, match="speed") as unknown:
        load(path)
    assert "\n" not in str(unknown.value)  # one line, naming the field
    path.write_text("title = [unclosed")
    with pytest.raises(ValueError, match="not valid TOML"):
        load(path)
    path.write_text(BROKEN.replace('submit = "job"', 'submit = "job"\nadvance = "1h"'))
    with pytest.raises(ValueError, match="a step does one thing, this one has submit and advance"):
        load(path)


def test_durations() -> None:
    assert seconds("1h30m") == 5400 and seconds("4d") == 345_600 and seconds(90) == 90
    with pytest.raises(ValueError, match="not a duration"):
        seconds("soon")


@pytest.mark.torch
def test_the_cli_lists_runs_and_fails_on_a_broken_scenario(tmp_path: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "qcog_mock.mockserver.cli", "scenario", "list", str(SCENARIOS)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "guide-four-day-job.toml" in listed.stdout
    (tmp_path / "broken.toml").write_text(BROKEN)
    ran = subprocess.run(
        [sys.executable, "-m", "qcog_mock.mockserver.cli", "scenario", "run", str(tmp_path),
         str(SCENARIOS / "last-allowed-attempt.toml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ran.returncode == 1
    assert "last-allowed-attempt" in ran.stdout and "pass" in ran.stdout
    assert "broken" in ran.stdout and "FAIL" in ran.stdout and "attempt outcomes" in ran.stdout
