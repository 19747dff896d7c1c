"""The console commands against a real server: tables, JSON, and one-line errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from qcog_mock.mockserver.cli import main
from qcog_mock.mockserver.cli.console import printable
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.story import Story
from tests.mockserver.helpers import KEY, dataset_csv, hyperparameters


@pytest.fixture
def server() -> Iterator[str]:
    with QcogPlatform.socket(Settings(api_key=KEY, clock="manual")) as started:
        yield started.base_url.removesuffix("/api")


def console(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as stop:
        code = int(stop.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def submit_a_job(server: str) -> None:
    async with Story.connect(f"{server}/api", KEY) as story:
        await story.upload("data", dataset_csv())
        await story.submit(
            "job", "data", {"hyperparameters": hyperparameters(epochs=6), "timeout": 3600,
                            "retries": 1, "emulator": {"epoch_seconds": 1500}},
            webhook_url="http://127.0.0.1:9/hook",
        )  # fmt: skip


def test_runs_run_clock_and_deliveries(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(submit_a_job(server))  # the commands run their own loop, as from a terminal
    options = ("--url", server, "--api-key", KEY)
    code, out, _ = console(capsys, "clock", "advance", "2h", *options)
    assert code == 0 and out.startswith("2026-01-01T02:00:00Z  mode manual")
    code, out, _ = console(capsys, "runs", *options)
    assert code == 0 and "simulated time 2026-01-01T02:00:00Z" in out
    row = next(line for line in out.splitlines() if line.startswith("job"))
    assert row.split()[1:4] == ["running", "2/2", "4/6"]  # attempt 2 of 2, epoch 4 of 6
    code, out, _ = console(capsys, "runs", "--json", *options)
    assert json.loads(out)["runs"][0]["name"] == "job"
    code, out, _ = console(capsys, "run", "job", *options)
    assert "attempt.timed_out" in out and "checkpoint.saved" in out
    code, out, _ = console(capsys, "deliveries", "--run", "job", *options)
    # Nobody listens on the run's webhook URL: pending, with the next retry's simulated time.
    created = next(line for line in out.splitlines() if " run.created " in line)
    assert code == 0 and created.split()[2] == "pending" and created.endswith("Z")
    code, out, _ = console(capsys, "clock", "to", "2026-01-02T00:00:00Z", "--json", *options)
    assert json.loads(out)["now"] == "2026-01-02T00:00:00Z"


def test_errors_are_one_line(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = console(capsys, "runs", "--url", "http://127.0.0.1:9", "--api-key", KEY)
    assert code == 1 and err.count("\n") == 1
    assert "cannot reach http://127.0.0.1:9" in err and "Traceback" not in err
    code, _, err = console(capsys, "clock", "--url", server, "--api-key", "wrong")
    assert code == 1 and "answered 401" in err and err.count("\n") == 1
    code, _, err = console(capsys, "run", "nope", "--url", server, "--api-key", KEY)
    assert code == 1 and "not found" in err


def test_a_malformed_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = console(capsys, "runs", "--url", "http://[::1", "--api-key", KEY)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "--url: 'http://[::1' is not a URL" in err


def test_what_tenants_wrote_cannot_drive_the_terminal() -> None:
    assert printable("run \x1b[2Jnamed\x9b31m ok\nnext") == "run \\x1b[2Jnamed\\x9b31m ok\nnext"
