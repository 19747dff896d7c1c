"""Kill a real ``qcog-mock serve`` with SIGKILL mid-run and start it again on the same data dir.

Nothing stored is lost, the interrupted attempt goes on from its last checkpoint without counting
as a retry, and the run's whole timeline equals that of a server never interrupted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.mockserver.testing.servers import free_port
from qcog_mock.mockserver.webhooks.events import is_webhook_event
from qcog_mock.mockserver.webhooks.receiver import WebhookReceiver
from tests.mockserver.helpers import KEY, Platform, connected, emulator, served

pytestmark = pytest.mark.torch  # every test here trains

HOUR = 3600
EPOCH = 1500
# Into attempt 2: attempt 1 timed out at 1:00:05, attempt 2 began at 1:00:35 and has committed
# epoch 3 (1:25:35); epoch 4 is under way when the server dies.
KILL_AT = 5 + HOUR + 30 + EPOCH + 100


def ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def server(
    data_dir: Path,
    port: int,
    *extra: str,
    ignore_sigint: bool = False,
    preexec: Callable[[], None] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """``serve`` in a process; ``ignore_sigint``: started as a shell's background job is;
    ``preexec``: run in the child before it starts."""
    command = [
        sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
        "--data-dir", str(data_dir), "--clock", "manual", "--log-level", "info", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={**os.environ, "QCOG_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignoring_sigint if ignore_sigint else preexec,
    )
    try:
        assert process.stderr is not None
        said = []
        for line in process.stderr:  # uvicorn says when it is ready
            said.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail(f"qcog-mock serve exited with {process.wait()}: {''.join(said[-20:])}")
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


async def story_until_kill(platform: Platform) -> str:
    dataset = await platform.dataset_id("training-data")
    run = await platform.submit(dataset, timeout=HOUR, retries=2, emulator={"epoch_seconds": EPOCH})
    await platform.advance(KILL_AT)
    return run["id"]


def timeline(events: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    """The runs' timeline; the restart itself is recorded apart, as platform.restarted."""
    return [(e["time"], e["type"], e.get("attempt")) for e in events if e.get("run_id")]


async def uninterrupted() -> tuple[list[tuple[str, str, Any]], dict[str, Any]]:
    async with emulator() as platform:
        run_id = await story_until_kill(platform)
        await platform.advance(24 * HOUR)
        return timeline(await platform.events()), await platform.run(run_id)


async def test_sigkill_mid_attempt_loses_nothing_and_the_run_carries_on(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with server(tmp_path, port) as process:
        async with connected(served(base), timeout=120) as platform:
            client = platform.client
            run_id = await story_until_kill(platform)
            before = await platform.run(run_id)
            events_before = await platform.events()
            clock_before = (await client.get("/_emulator/clock")).json()["now"]
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert before["status"] == "running" and before["current_attempt"] == 2
    assert before["metrics"]["epoch"] == 3

    with server(tmp_path, port):
        async with connected(served(base), timeout=120) as platform:
            client = platform.client
            assert (await client.get("/_emulator/clock")).json()["now"] == clock_before
            after = await platform.run(run_id)
            assert after["status"] == "running" and after["attempts"] == before["attempts"]
            events_after = await platform.events()
            assert events_after[: len(events_before)] == events_before
            assert events_after[len(events_before)]["type"] == "platform.restarted"
            assert events_after[len(events_before)]["time"] == clock_before
            datasets = (await client.get(f"{platform.project}/datasets")).json()
            assert [d["name"] for d in datasets] == ["training-data"]
            checkpoints = (
                await client.get(f"{platform.project}/experiment_runs/{run_id}/checkpoints")
            ).json()
            assert [c["epoch"] for c in checkpoints] == [1, 2, 3]

            await platform.advance(24 * HOUR - KILL_AT)
            finished = await platform.run(run_id)
            restarted_timeline = timeline(await platform.events())

    assert finished["status"] == "completed"
    assert [a["outcome"] for a in finished["attempts"]] == ["timed_out", "timed_out", "completed"]
    expected_timeline, expected_run = await uninterrupted()
    assert restarted_timeline == expected_timeline
    from qcog_mock.trainer.experiment import WALL_TIME_METRICS  # torch: not at collection

    strip = lambda m: {k: v for k, v in m.items() if k not in WALL_TIME_METRICS}  # noqa: E731
    assert strip(finished["metrics"]) == strip(expected_run["metrics"])
    assert finished["attempts"] == expected_run["attempts"]


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


async def test_a_kill_during_run_creation_never_bricks_the_data_dir(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    submitted = 0
    for round_, delay in enumerate((0.02, 0.05, 0.1)):
        with server(tmp_path, port) as process:
            async with connected(served(base), timeout=60) as platform:
                client = platform.client
                dataset = await platform.dataset_id(f"data-{round_}")
                runs = f"{platform.project}/experiment_runs"
                creations = [
                    asyncio.create_task(
                        client.post(runs, json=platform.run_body(dataset, f"job-{round_}-{i}"))
                    )
                    for i in range(20)
                ]
                await asyncio.sleep(delay)
                kill(process)  # while creations are in flight
                await asyncio.gather(*creations, return_exceptions=True)
                submitted += 20
    with server(tmp_path, port):  # the server starts, every time
        async with connected(served(base), timeout=120) as platform:
            client = platform.client
            runs = (await client.get(f"{platform.project}/experiment_runs")).json()
            assert 0 < len(runs) <= submitted
            assert all(r["status"] == "pending" and r["next_attempt_at"] for r in runs)
            await platform.advance(3 * HOUR)
            statuses = {
                (await platform.run(r["id"]))["status"] for r in runs
            }  # every run created is a whole run that trains to its end
            assert statuses == {"completed"}


async def test_after_random_kills_every_event_has_all_its_deliveries_and_each_is_sent(
    tmp_path: Path,
) -> None:
    port, endpoints = free_port(), 25
    base = f"http://127.0.0.1:{port}"
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    rng = random.Random(7)
    with WebhookReceiver(secret) as receiver:
        root = receiver.url.removesuffix(receiver.path)
        extra = ["--webhook-secret", secret]
        for i in range(endpoints):
            extra += ["--webhook-url", f"{root}/endpoint-{i}"]
        for kill_number in range(5):
            with server(tmp_path, port, *extra) as process:
                async with connected(served(base), timeout=120) as platform:
                    c = platform.client
                    if kill_number == 0:
                        dataset = await platform.dataset_id()
                        await platform.submit(
                            dataset, timeout=HOUR, retries=2, emulator={"epoch_seconds": EPOCH}
                        )
                    advancing = asyncio.create_task(
                        c.post("/_emulator/clock/advance", json={"seconds": 20 * 60})
                    )
                    await asyncio.sleep(rng.uniform(0.05, 0.6))
                    kill(process)  # mid-advance: events and deliveries being written
                    await asyncio.gather(advancing, return_exceptions=True)
        with server(tmp_path, port, *extra):
            async with connected(served(base), timeout=300) as platform:
                client = platform.client
                await platform.advance(2 * 24 * HOUR)  # the run ends, every retry is due
                events = await platform.events()
                deliveries = (await client.get("/_emulator/webhooks/deliveries")).json()

    posted = [e for e in events if e.get("run_id") and is_webhook_event(e["type"])]
    assert any(e["type"] == "run.completed" for e in posted)
    urls = {f"{root}/endpoint-{i}" for i in range(endpoints)}
    by_event: dict[int, set[str]] = {}
    for delivery in deliveries:
        by_event.setdefault(delivery["event_seq"], set()).add(delivery["url"])
    assert {e["seq"]: urls for e in posted} == by_event  # all deliveries, for every event
    assert {d["status"] for d in deliveries} == {"delivered"}
    received = {
        (r["path"], {k.lower(): v for k, v in r["headers"].items()}["webhook-id"])
        for r in receiver.requests
        if r["verified"]
    }
    for delivery in deliveries:  # each was sent, at least once
        path = delivery["url"].removeprefix(root)
        assert (path, delivery["message_id"]) in received
