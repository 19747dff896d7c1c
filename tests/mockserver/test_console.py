"""The console commands against a real server: tables, JSON, and one-line errors."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qcog_mock import __version__
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


@pytest.mark.torch
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
    assert "attempt.timed_out" in out and "checkpoint.saved left out: --all lists them" in out
    code, out, _ = console(capsys, "run", "job", "--all", *options)
    assert " checkpoint.saved " in out
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
    assert "with --api-key or QCOG_API_KEY" in err
    code, _, err = console(capsys, "run", "nope", "--url", server, "--api-key", KEY)
    assert code == 1 and "not found" in err


def test_a_malformed_url_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = console(capsys, "runs", "--url", "http://[::1", "--api-key", KEY)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "--url: 'http://[::1' is not a URL" in err


def test_what_tenants_wrote_cannot_drive_the_terminal() -> None:
    assert printable("run \x1b[2Jnamed\x9b31m ok\nnext") == "run \\x1b[2Jnamed\\x9b31m ok\nnext"


def test_a_url_without_a_scheme_is_named_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = console(capsys, "runs", "--url", "127.0.0.1:8001", "--api-key", KEY)
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "'127.0.0.1:8001' has no scheme; give it whole, such as http://127.0.0.1:8001" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = console(capsys, "--version")
    assert (code, out, err) == (0, f"qcog-mock {__version__}\n", "")


@pytest.mark.torch
def test_run_shows_each_attempt_and_rounded_losses(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(submit_a_job(server))
    options = ("--url", server, "--api-key", KEY)
    console(capsys, "clock", "advance", "1d", *options)
    code, out, _ = console(capsys, "run", "job", "--all", *options)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "job: failed, attempt 2/2, 4 epochs", out
    attempts = [line.split()[:3] for line in lines[2:4]]
    assert attempts == [["1", "timed_out", "0→2"], ["2", "timed_out", "2→4"]], out
    losses = re.findall(r"val_loss=(\S+)", out)
    assert losses and all(len(loss.lstrip("-").replace(".", "")) <= 7 for loss in losses), losses
    assert "None" not in out


def test_run_shows_the_runs_notes(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    async def on_a_t4() -> None:
        async with Story.connect(f"{server}/api", KEY) as story:
            await story.upload("data", dataset_csv())
            parameters = {"hyperparameters": hyperparameters(), "gpu_type": "T4"}
            await story.submit("on-t4", "data", parameters)

    asyncio.run(on_a_t4())
    code, out, _ = console(capsys, "run", "on-t4", "--url", server, "--api-key", KEY)
    note = "trained on CPU: the emulator has no GPU; the platform would use the T4"
    assert code == 0 and out.splitlines()[1] == f"  note: {note}", out


def test_an_advance_in_auto_mode_moves_the_clock(capsys: pytest.CaptureFixture[str]) -> None:
    with QcogPlatform.socket(Settings(api_key=KEY, clock="auto")) as started:
        url = started.base_url.removesuffix("/api")
        code, out, _ = console(capsys, "clock", "advance", "4d", "--url", url, "--api-key", KEY)
    assert code == 0 and out.startswith("2026-01-05T00:00:00Z  mode auto"), out


def test_run_piped_into_a_closed_reader_ends_quietly(server: str) -> None:
    asyncio.run(submit_a_job(server))
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "run", "job", "--all"]
    reader = subprocess.Popen(
        [*command, "--url", server, "--api-key", KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # as `| head` does once it has its lines
    error = reader.stderr.read()
    assert reader.wait(timeout=60) == 128 + signal.SIGPIPE
    assert error == "", error


def test_serve_on_a_port_in_use_says_so_before_its_banner(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port)]
        done = subprocess.run(
            [*command, "--data-dir", str(tmp_path / "data")], capture_output=True, text=True
        )
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert done.stderr == (
        f"qcog-mock serve: cannot listen on 127.0.0.1:{port}: another server holds it "
        "(a qcog-mock serve?): stop it, or choose --port.\n"
    )
    assert not (tmp_path / "data").exists()
