"""Offline demo: the long-running-jobs guide's job on the emulator, told as it happens.

Uploads a synthetic guide-shaped dataset (77 features + the guide's target) under the guide's
name, submits the guide's job (24 h timeout, retries 3) over HTTP to an in-process emulator on the
``auto`` clock, and prints its timeline while it trains for real: attempts starting, epochs with
their losses, attempts timing out and resuming from their last checkpoint. Each epoch is priced at
3,300 simulated seconds (and early stopping is left off) so that the job needs all four attempts.

    qcog-mock demo [--rows 20000] [--epochs 100]
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
import threading
from pathlib import Path
from typing import Any

import httpx
import torch

from qcog_mock.mockserver.app import create_app
from qcog_mock.mockserver.cli.picture import draw_run
from qcog_mock.mockserver.cli.serve import check_port
from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.dashboard.pages import login_url
from qcog_mock.mockserver.documents import TERMINAL
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, Settings
from qcog_mock.mockserver.testing.servers import serve_in_thread, stopped_by_signals
from qcog_mock.mockserver.testing.story import Story
from qcog_mock.trainer.guide import adam, guide_hyperparameters
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

UNSEEN_ROWS = 500
KEY = DEFAULT_API_KEY  # the console's default too: `qcog-mock runs` reaches `demo --serve`
EPOCH_SECONDS = 3300
BARS = "▁▂▃▄▅▆▇█"


def guide_parameters(epochs: int) -> dict[str, Any]:
    """The guide's submission; a learning rate that learns visibly, early stopping off."""
    return {
        "hyperparameters": guide_hyperparameters(
            epochs=epochs,
            optimizer_config=adam(0.01),
            scheduler_config={"type": "StepLR", "params": {"step_size": 25, "gamma": 0.5}},
            early_stopping_config=None,
        ),
        "cpu_count": 4,
        "memory": 16384,
        "timeout": 3600 * 24,
        "retries": 3,
        "emulator": {"epoch_seconds": EPOCH_SECONDS},
    }


def elapsed(since: float, time: str) -> str:
    seconds = int(parse_time(time) - since)
    days, rest = divmod(seconds, 86_400)
    return f"day {days} {rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def describe(event: dict[str, Any]) -> str | None:
    kind, attempt = event["type"], event.get("attempt")
    if kind == "checkpoint.saved":
        epoch = event["epoch"]
        if epoch % 5 and epoch != 1:
            return None
        return (
            f"  epoch {epoch:>3}  train_loss {event['train_loss']:.4f}  "
            f"val_loss {event['val_loss']:.4f}  ({event['checkpoint']})"
        )
    messages = {
        "run.pending": "run pending"
        if attempt in (None, 1)
        else f"run pending: attempt {attempt} queued",
        "attempt.started": f"attempt {attempt} started",
        "attempt.timed_out": f"attempt {attempt} timed out: {event.get('reason')}",
        "attempt.crashed": f"attempt {attempt} crashed: {event.get('reason')}",
        "attempt.completed": f"attempt {attempt} completed",
        "run.completed": "run completed",
        "run.failed": f"run failed: {event.get('reason')}",
    }
    return messages.get(kind)


def sparkline(values: list[float], width: int = 50) -> str:
    step = max(1, -(-len(values) // width))  # ceil: at most `width` bars
    values = values[::step]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1))] for v in values)


async def tell(story: Story, rows: int, epochs: int, picture: Path | None = None) -> None:
    frame = synthetic_panel(dates=max(1, rows // 100), assets=100, seed=0)
    csv = frame.to_csv(index=False, float_format="%.7g").encode()
    dataset = await story.upload("training-dat  ", csv)
    print(
        f"Dataset 'training-dat  ': {dataset['number_of_rows']:,} rows × "
        f"{dataset['number_of_columns']} columns; pytorch-models on a CPU environment"
    )
    run = await story.submit(
        "long-running-job",
        "training-dat  ",
        guide_parameters(epochs),
        description="This is a long running job",
    )
    print(
        f"Submitted '{run['name']}': {epochs} epochs, timeout 24 h per attempt, retries 3 "
        f"(up to {run['runtime_limit_seconds'] / 3600:.0f} h), "
        f"{EPOCH_SECONDS} simulated s per epoch\n"
    )
    submitted = parse_time(run["created_at"])
    seen = 0
    while True:
        events = await story.events(after=seen)
        for event in events:
            seen = event["seq"]
            if line := describe(event):
                print(f"{elapsed(submitted, event['time'])}  {line}", flush=True)
        run = await story.run("long-running-job")
        if run["status"] in TERMINAL and not events:
            break
        await asyncio.sleep(0.2)  # the auto clock runs on its own: print as it goes
    summarise(run)
    if run["status"] == "completed":
        await predict(story)
    if picture is not None:
        print(f"\nPicture of the run (attempts and loss curves): {draw_run(run, picture)}")


async def predict(story: Story) -> None:
    """The guide's next steps: deploy the best checkpoint, ask it about rows it never saw."""
    deployed = await story.client.create_deployment(
        "demo-model",
        "v1.0.0",
        run_name="long-running-job",
        criterion={"metric": "loss", "value": "smallest"},
    )
    if "error" in deployed:
        print(f"Deployment failed: {deployed['error']}")
        return
    unseen = synthetic_panel(dates=1, assets=UNSEEN_ROWS, seed=99)
    answer = await story.client.sync_inference(
        unseen.drop(columns=[TARGET]), deployment_name="demo-model"
    )
    if "error" in answer:
        print(f"Inference failed: {answer['error']}")
        return
    predicted = [row[0] for row in answer["response"]["predictions"]]
    true = [float(value) for value in unseen[TARGET]]
    name = deployed["response"]["checkpoint_name"]
    print(f"\nDeployed {name} (smallest loss), asked about {len(true)} rows it never saw:")
    print(f"  {'predicted':>10}  {'true':>10}")
    for guess, value in list(zip(predicted, true, strict=True))[:5]:
        print(f"  {guess:>10.4f}  {value:>10.4f}")
    r2, correlation = fit(predicted, true)
    print(
        f"  … the fit over all {len(true)}: R² {r2:.3f} (1 is perfect, 0 no better than the "
        f"mean), correlation {correlation:.3f}.\n  The synthetic returns are mostly noise, as "
        "real ones are: expect a small positive correlation, not matching values."
    )


def fit(predicted: list[float], true: list[float]) -> tuple[float, float]:
    """R² of the predictions against the true values, and their Pearson correlation."""
    mean_true = statistics.fmean(true)
    residual = math.fsum((t - p) ** 2 for p, t in zip(predicted, true, strict=True))
    total = math.fsum((t - mean_true) ** 2 for t in true)
    r2 = 1 - residual / total if total else float("nan")
    try:
        correlation = statistics.correlation(predicted, true)
    except statistics.StatisticsError:  # constant predictions
        correlation = float("nan")
    return r2, correlation


def summarise(run: dict[str, Any]) -> None:
    print(f"\nStatus: {run['status']}")
    for attempt in run["attempts"]:
        print(
            f"  attempt {attempt['number']}: {attempt['outcome']:<9} resumed from epoch "
            f"{attempt['resumed_from_epoch']:>3}, {attempt['epochs_completed']:>3} epochs"
        )
    print(
        f"Running time {run['runtime_seconds'] / 3600:.1f} h of the "
        f"{run['runtime_limit_seconds'] / 3600:.0f} h that timeout × (1 + retries) allows"
    )
    metrics = run["metrics"] or {}
    if history := metrics.get("val_loss_history"):
        print(f"val_loss  {sparkline(history)}  {history[0]:.3f} → {history[-1]:.3f}")
    for key in ("test_loss", "best_val_loss", "final_train_loss", "epochs_completed"):
        if key in metrics:
            value = metrics[key]
            print(
                f"  {key:<18} {value:.4f}" if isinstance(value, float) else f"  {key:<18} {value}"
            )
    if run.get("error"):
        print(f"Error: {run['error']}")


def demo_platform() -> Platform:
    return Platform(Settings(api_key=KEY, clock="auto", worker_threads=2))


async def main(rows: int, epochs: int, picture: Path | None = None) -> None:
    platform = demo_platform()
    try:
        transport = httpx.ASGITransport(app=create_app(platform))
        async with Story.connect("http://testserver/api", KEY, transport=transport) as story:
            await tell(story, rows, epochs, picture)
    finally:
        platform.close()


def serve_demo(rows: int, epochs: int, picture: Path | None, port: int) -> None:
    """The demo over a real HTTP server that stays up afterwards, for the dashboard; Ctrl-C
    or SIGTERM stops the server, then the platform (its workers and files)."""
    platform = demo_platform()
    app = create_app(platform)
    try:
        with (
            stopped_by_signals(),
            contextlib.suppress(KeyboardInterrupt),
            serve_in_thread(app, port) as url,
        ):
            dashboard = login_url(app, url)
            print(f"Dashboard (watch the job live): {dashboard}\n", flush=True)

            async def over_http() -> None:
                async with Story.connect(f"{url}/api", KEY) as story:
                    await tell(story, rows, epochs, picture)

            asyncio.run(over_http())
            print(f"\nThe emulator stays up: {url}/api/v1 (API key {KEY})")
            print(f"Dashboard: {dashboard}\nCtrl-C to stop.", flush=True)
            threading.Event().wait()
    finally:
        platform.close()


def run_demo(
    rows: int = 20_000, epochs: int = 100, picture: Path | None = None, port: int | None = None
) -> None:
    """The demo in process; with ``port``, served over HTTP and kept up (``demo --serve``)."""
    torch.set_num_threads(2)  # the demo owns its process: both cores compute
    if port is None:
        asyncio.run(main(rows, epochs, picture))
    else:
        check_port("127.0.0.1", port, "demo --serve")
        serve_demo(rows, epochs, picture, port)
