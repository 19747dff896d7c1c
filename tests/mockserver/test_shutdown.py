"""SIGINT and SIGTERM stop `serve` and `demo --serve` within 5 s with attempts in flight, leaving
no worker process and no folder — also when started with SIGINT ignored, as a shell's
background job (a CI step) is."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from qcog_mock.mockserver.settings import DEFAULT_API_KEY
from qcog_mock.mockserver.testing.servers import free_port
from qcog_mock.mockserver.testing.story import Story
from tests.mockserver.helpers import KEY, dataset_csv, hyperparameters, until, wait_for_exit
from tests.mockserver.test_restart import ignoring_sigint, server

pytestmark = pytest.mark.torch  # every test here trains

STOP_WITHIN = 5  # seconds, the promise the README makes
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]


def workers_of(pid: int) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", "engine.executors"], capture_output=True, text=True
    )
    return [int(child) for child in found.stdout.split()]


async def two_long_runs(base_url: str, api_key: str, advance: float | None) -> None:
    """Two runs of 10,000 epochs, submitted over HTTP; in manual mode the clock is advanced so
    that both attempts start."""
    async with Story.connect(f"{base_url}/api", api_key) as story:
        await story.upload("data", dataset_csv())
        parameters = {
            "hyperparameters": hyperparameters(epochs=10_000),
            "emulator": {"epoch_seconds": 1},
        }
        for name in ("first", "second"):
            await story.submit(name, "data", parameters)
        if advance is not None:
            await story.advance(advance)


async def wait_for_workers(pid: int, count: int) -> list[int]:
    """The worker processes of ``pid``, once there are ``count`` (the attempts compute)."""
    for _ in range(6000):
        if len(found := workers_of(pid)) >= count:
            return found
        await asyncio.sleep(0.01)
    pytest.fail(f"process {pid} never had {count} workers")


def stopped(process: subprocess.Popen[str], signum: int, expected: int = 0) -> bool:
    """Whether ``process`` ended within STOP_WITHIN seconds of ``signum``, with status
    ``expected`` or by the signal itself (uvicorn re-raises it once it has shut down); else it
    is killed."""
    process.send_signal(signum)
    try:
        return process.wait(STOP_WITHIN) in (expected, -signum)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False


@pytest.mark.parametrize("signum", SIGNALS)
async def test_serve_stops_within_seconds_with_two_attempts_computing(
    tmp_path: Path, signum: int
) -> None:
    port = free_port()
    with server(tmp_path, port, "--workers", "2", ignore_sigint=True) as process:
        await two_long_runs(f"http://127.0.0.1:{port}", KEY, advance=6)
        workers = await wait_for_workers(process.pid, 2)
        assert stopped(process, signum), f"serve did not stop within {STOP_WITHIN} s"
    assert all(wait_for_exit(pid) for pid in workers), "a worker outlived serve"


@pytest.mark.parametrize("signum", SIGNALS)
async def test_demo_serve_stops_within_seconds_with_attempts_in_flight(
    tmp_path: Path, signum: int
) -> None:
    scratch = tmp_path / "tmp"  # where the demo's platform keeps its files
    scratch.mkdir()
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "demo", "--serve", "--port", "0"]
    command += ["--rows", "200", "--epochs", "2", "--picture", str(tmp_path / "demo.png")]
    demo = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(scratch)},
        preexec_fn=ignoring_sigint,
    )
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C to stop."):
                break
        out = "".join(lines)
        url = out.split("The emulator stays up: ", 1)[1].split("/api/v1", 1)[0]
        await two_long_runs(url, DEFAULT_API_KEY, advance=None)  # the demo's clock is auto
        # One attempt computes, the other waits for the demo's one worker slot.
        workers = await wait_for_workers(demo.pid, 1)
        assert stopped(demo, signum), f"demo --serve did not stop within {STOP_WITHIN} s"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert all(wait_for_exit(pid) for pid in workers), "a worker outlived demo --serve"
    # torch's own per-user cache folder (made by the first optimizer any program builds) aside.
    left = [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], "demo --serve left its files behind"


USERS_TEST = """
import os, pathlib, time

import pytest

from qcog_mock.mockserver.engine.executors import local_processes
from qcog_mock.trainer.synthetic import TARGET

HYPERPARAMETERS = {
    "hsm_model": "general", "epochs": 10_000, "batch_size": 16, "seed": 3, "targets": TARGET,
    "input_operator_count": 4, "output_operator_count": 1, "hilbert_space_dims": 2,
    "optimizer_config": {"type": "Adam", "default_params": {"lr": 0.02}},
    "loss_fn_config": {"type": "MSELoss"},
}


@pytest.mark.qcog(clock="manual")  # the run stays running at 6 s, however fast it trains
async def test_trains_until_stopped(qcog_client, qcog_clock, qcog_dataset):
    await qcog_dataset("training", features=4)
    await qcog_client.run_experiment(
        "job", experiment_name="pytorch-models", dataset_name="training", instance="cpu",
        parameters={"hyperparameters": HYPERPARAMETERS, "emulator": {"epoch_seconds": 1}},
    )
    await qcog_clock.advance(seconds=6)
    run = (await qcog_client.get_experiment_run("job"))["response"]
    assert run["status"] == "running", run
    busy = " ".join(map(str, local_processes().busy_pids()))
    ready = pathlib.Path(os.environ["READY_FILE"])
    ready.with_suffix(".partial").write_text(busy)
    ready.with_suffix(".partial").rename(ready)  # whole, for the test that waits for it
    time.sleep(600)
"""


def test_the_plugins_fixtures_tear_down_on_sigterm(pytester: pytest.Pytester) -> None:
    """A user's pytest session, its attempt computing, ends on SIGTERM (a cancelled CI job) as
    on Ctrl-C: the fixtures are torn down, the worker and the scratch folder go."""
    pytester.makepyfile(test_user=USERS_TEST)
    scratch, ready = pytester.mkdir("tmp"), pytester.path / "ready"
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=pytester.path,
        env={**os.environ, "TMPDIR": str(scratch), "READY_FILE": str(ready)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        until(lambda: ready.exists() or session.poll() is not None, timeout=120)
        assert ready.exists(), session.communicate()[0]
        (worker,) = map(int, ready.read_text().split())
        ended = stopped(session, signal.SIGTERM, expected=pytest.ExitCode.INTERRUPTED)
        assert ended, f"the session (exit {session.returncode}) said:\n{session.communicate()[0]}"
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert wait_for_exit(worker), "the attempt's worker outlived the session"
    left = [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], "the session left the emulator's scratch folder behind"
