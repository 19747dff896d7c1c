"""The engine is total over executor failures, and close and stop are ordered.

Each test owns its executor: a pool of its own (``LocalProcesses``), or a faulty executor made
for the failure at hand. Afterwards no run is left ``running`` with nothing computing it (the
engine's ``stranded`` watchdog), no worker process is left (checked by pid) and no folder.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.mockserver.engine.executors import LocalProcesses, WorkerDied
from qcog_mock.mockserver.engine.worker import AttemptJob
from tests.mockserver import helpers
from tests.mockserver.helpers import Platform, emulator, hyperparameters, until, wait_for_exit

HOUR = 3600


def wait_until_dead(pid: int) -> None:
    """Block until ``pid`` (our child) has died, without reaping it: its parent will."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def committed(platform: Platform, run_id: str, epochs: int) -> Callable[[], bool]:
    """Whether ``epochs`` epochs of the run are committed."""
    assert platform.backend is not None
    store = platform.backend.store
    return lambda: len(store.checkpoints(run_id)) >= epochs


def assert_nothing_stranded(platform: Platform) -> None:
    assert platform.backend is not None
    helpers.assert_nothing_stranded(platform.backend)


# The pool ------------------------------------------------------------------------------------


@pytest.mark.torch
def test_a_kill_for_a_finished_job_is_ignored(pool: LocalProcesses) -> None:
    done = pool.submit(os.getpid)
    pid = done.result()
    pool.kill(done)
    assert pool.submit(os.getpid).result() == pid  # the same warm worker, alive


@pytest.mark.torch
def test_a_worker_that_died_idle_is_never_handed_out(pool: LocalProcesses) -> None:
    pid = pool.submit(os.getpid).result()
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would, between two jobs
    wait_until_dead(pid)
    assert pool.idle_pids() == [pid]
    assert pool.submit(os.getpid).result() != pid  # a new worker ran it
    assert pid not in pool.idle_pids()


@pytest.mark.torch
def test_a_broken_pipe_sends_the_job_to_a_new_worker(pool: LocalProcesses) -> None:
    pid = pool.submit(os.getpid).result()
    pool.submit(os.close, 0).result()  # the worker closes its end of the job pipe
    assert pool.submit(os.getpid).result() != pid


@pytest.mark.torch
def test_a_killed_job_fails_and_its_worker_is_not_reused(pool: LocalProcesses) -> None:
    running = pool.submit(time.sleep, 60)
    (pid,) = until(pool.busy_pids)
    pool.kill(running)
    with pytest.raises(WorkerDied, match="killed by SIGKILL"):
        running.result(timeout=30)
    assert pid not in pool.idle_pids()
    # A replacement starts warming at once, before any job asks for one.
    (replacement,) = until(pool.idle_pids)
    assert replacement != pid
    assert pool.submit(os.getpid).result() == replacement


def test_a_worker_that_cannot_import_torch_fails_each_job_saying_so(
    pool: LocalProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Python without torch, as where qcog-mock was installed without its dependencies: a
    # `torch` earlier on the path that cannot be imported.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    )
    for _ in range(2):  # the worker stays, and says so for every job
        with pytest.raises(RuntimeError) as failed:
            pool.submit(os.getpid).result(timeout=120)
        assert "cannot import what training needs (No module named 'torch')" in str(failed.value)
        assert "pip install 'torch>=2.3,<2.14'" in str(failed.value)
    assert len(pool.idle_pids()) == 1


# Faulty executors ----------------------------------------------------------------------------


class SubmitFails(Executor):
    """An executor whose ``submit`` raises ``error`` the first ``times`` times, then hands the
    job to ``then``."""

    def __init__(self, error: Exception, times: int, then: Executor | None = None) -> None:
        self.error, self.times, self.then = error, times, then

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self.times > 0 or self.then is None:
            self.times -= 1
            raise self.error
        return self.then.submit(fn, *args)

    def kill(self, future: Future[Any]) -> None:
        if isinstance(self.then, LocalProcesses):
            self.then.kill(future)


class WritesGarbage(Executor):
    """An executor whose worker writes a first result that is not a result, then ends."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        (job,) = args
        assert isinstance(job, AttemptJob)
        (Path(job.folder) / "000001.json").write_text('{"kind": "epoch", "at": ')
        future: Future[Any] = Future()
        future.set_result(job.folder)
        return future


async def short_run(platform: Platform, name: str = "job", **params: Any) -> dict[str, Any]:
    dataset = await platform.dataset_id(name)
    run = await platform.submit(
        dataset, name, hyperparameters=hyperparameters(epochs=3), timeout=HOUR, **params
    )
    await platform.advance(12 * HOUR)
    return await platform.run(run["id"])


async def test_an_executor_that_cannot_take_the_job_crashes_the_attempt_each_time() -> None:
    executor = SubmitFails(RuntimeError("no capacity left"), times=2)
    async with emulator(using=executor) as platform:
        run = await short_run(platform, retries=1)
        assert_nothing_stranded(platform)
    assert run["status"] == "failed"
    assert [a["outcome"] for a in run["attempts"]] == ["crashed", "crashed"]
    reason = "crashed: the worker failed: RuntimeError: no capacity left"
    assert all(a["reason"] == reason for a in run["attempts"])
    assert reason in run["errors"][-1]


@pytest.mark.torch
async def test_a_broken_pipe_at_submit_is_a_crashed_attempt_and_the_retry_trains(
    pool: LocalProcesses,
) -> None:
    executor = SubmitFails(BrokenPipeError(32, "Broken pipe"), times=1, then=pool)
    async with emulator(using=executor) as platform:
        run = await short_run(platform, retries=1)
        assert_nothing_stranded(platform)
    assert [a["outcome"] for a in run["attempts"]] == ["crashed", "completed"]
    assert "BrokenPipeError" in run["attempts"][0]["reason"]
    assert run["status"] == "completed" and run["metrics"]["epochs_completed"] == 3


async def test_an_unreadable_result_file_is_a_crashed_attempt() -> None:
    async with emulator(using=WritesGarbage()) as platform:
        run = await short_run(platform, retries=1)
        assert_nothing_stranded(platform)
    assert run["status"] == "failed"
    assert [a["outcome"] for a in run["attempts"]] == ["crashed", "crashed"]
    assert "crashed: result 1 is not a worker result" in run["attempts"][0]["reason"]


@pytest.mark.torch
async def test_a_worker_killed_between_its_ok_and_reuse_is_replaced(pool: LocalProcesses) -> None:
    async with emulator(using=pool) as platform:
        first = await short_run(platform)
        # The worker that trained it waits for the next job, once the pool's watcher has read
        # its answer (the run may be seen completed a moment before).
        (pid,) = until(pool.idle_pids)
        os.kill(pid, signal.SIGKILL)
        wait_until_dead(pid)
        second = await short_run(platform, "second")
        assert_nothing_stranded(platform)
        (replacement,) = until(pool.idle_pids)  # filed idle once the watcher reads its answer
        assert replacement != pid
    for run in (first, second):
        assert [a["outcome"] for a in run["attempts"]] == ["completed"]


@pytest.mark.torch
async def test_a_platform_closed_during_a_running_attempt_leaves_no_worker_and_no_folder(
    pool: LocalProcesses,
) -> None:
    # Closed after 0, 1, 2 or 3 committed epochs, four times each: every close kills a worker,
    # and each new one imports torch again (3-4 s), so the moments are cycled, not drawn 50 times.
    for epochs in [0, 1, 2, 3] * 4:
        async with emulator(using=pool, clock="auto") as platform:
            assert platform.backend is not None
            root = platform.backend.files.root
            dataset = await platform.dataset_id()
            run = await platform.submit(
                dataset, hyperparameters=hyperparameters(epochs=10_000),
                emulator={"epoch_seconds": 1},
            )  # fmt: skip
            (pid,) = until(pool.busy_pids)  # the attempt trains; its committer polls
            until(committed(platform, run["id"], epochs=epochs))
        assert wait_for_exit(pid), "the attempt's worker outlived its platform"
        until(lambda: not pool.busy_pids())  # the pool files the death as its watcher sees it
        assert not root.exists(), "a worker re-created the closed platform's folder"


async def test_an_attempt_that_cannot_begin_fails_the_run_with_the_reason() -> None:
    async with emulator() as platform:
        assert platform.backend is not None
        store = platform.backend.store
        dataset = await platform.dataset_id()
        run = await platform.submit(dataset)  # its first attempt starts 5 s from now
        # A record this version cannot read (written by another, or edited by hand).
        garbage = store.get("run", run["id"])
        assert garbage is not None
        garbage["params"] = {"hyperparameters": {"hsm_model": "quantum-toaster"}}
        store.put("run", garbage, scope=garbage["project_id"])
        await platform.advance(HOUR)
        assert_nothing_stranded(platform)
        failed = store.get("run", run["id"])
        events = await platform.events(run["id"])
    assert failed is not None and failed["status"] == "failed"
    assert failed["errors"][-1].startswith("Attempt 1 could not begin: the emulator failed: ")
    assert events[-1]["type"] == "run.failed"


class HoldsFirstJob(Executor):
    """Hands jobs to ``then``, but reports the first one done only once ``gate`` is set: its
    worker slot stays taken however fast it computes."""

    def __init__(self, then: LocalProcesses, gate: threading.Event) -> None:
        self.then, self.gate = then, gate
        self.held: Future[Any] | None = None
        self._inner: dict[Future[Any], Future[Any]] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        inner = self.then.submit(fn, *args)
        if self.held is not None:
            return inner
        outer: Future[Any] = Future()
        self.held, self._inner[outer] = outer, inner

        def report() -> None:
            self.gate.wait()
            error = inner.exception()  # once the job has ended
            if error is None:
                outer.set_result(inner.result())
            else:
                outer.set_exception(error)

        threading.Thread(target=report, daemon=True).start()
        return outer

    def kill(self, future: Future[Any]) -> None:
        self.gate.set()
        self.then.kill(self._inner.get(future, future))


async def two_runs_on_one_slot(
    executor: Executor, workers: int, check_while_held: Callable[[Platform, str, str], Any]
) -> list[tuple[str, str, Any]]:
    """A run of 20 one-minute epochs holds the only worker slot; a second run submitted a
    little later, of one-hour epochs, waits for it. The timeline of both."""
    async with emulator(using=executor, workers=workers) as platform:
        dataset = await platform.dataset_id()
        minutes = {"epoch_seconds": 60}
        first = await platform.submit(
            dataset, "first", hyperparameters=hyperparameters(epochs=20), emulator=minutes
        )
        await platform.advance(10)  # the first run's attempt has begun: the slot is its
        hours = {"epoch_seconds": HOUR}
        second = await platform.submit(
            dataset, "second", hyperparameters=hyperparameters(epochs=2), emulator=hours
        )
        advancing = asyncio.ensure_future(platform.advance(4 * HOUR))
        await asyncio.to_thread(check_while_held, platform, first["id"], second["id"])
        await advancing
        runs = [await platform.run(r["id"]) for r in (first, second)]
        assert [r["status"] for r in runs] == ["completed", "completed"]
        events = await platform.events()
    return [(e["time"], e["type"], e.get("run_name")) for e in events if e.get("run_id")]


@pytest.mark.torch
async def test_a_run_waiting_for_a_worker_slot_lets_the_clock_and_other_runs_go_on(
    pool: LocalProcesses,
) -> None:
    gate = threading.Event()
    executor = HoldsFirstJob(pool, gate)

    def while_held(platform: Platform, first: str, second: str) -> None:
        assert platform.backend is not None
        store = platform.backend.store
        # The first run finishes (in simulated time) while its slot is still held and the
        # second run waits for it: the waiting run does not stop the clock.
        until(lambda: store.get("run", first)["status"] == "completed", timeout=60)
        waiting = store.get("run", second)
        assert waiting["status"] == "running" and not store.checkpoints(second)
        gate.set()

    held = await two_runs_on_one_slot(executor, 1, while_held)
    free = await two_runs_on_one_slot(pool, 2, lambda *_: None)
    assert held == free  # the wait left no trace in the timeline
