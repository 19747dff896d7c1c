"""Deployments select real checkpoints; inferences are the trained model's predictions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from qcog_mock.mockserver.engine.executors import LocalProcesses
from qcog_mock.mockserver.engine.inference import InferenceJob, run_inference
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.trainer import predict
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel
from tests.mockserver.helpers import Platform, emulator, hyperparameters, until

HOUR = 3600
FEATURES = 77
TRAIN_ROWS = 1600


@pytest.fixture
def settings_overrides(tmp_path: Path) -> dict[str, Any]:
    return {"dataset_roots": (tmp_path,)}  # batch inference may read the test's own folder


def panel() -> pd.DataFrame:
    """One guide-shaped synthetic panel: the first 1,600 rows train, the last 400 are held out."""
    return synthetic_panel(dates=20, assets=100, features=FEATURES, seed=21)


async def trained(platform: Platform, seed: int = 3, **params: Any) -> dict[str, Any]:
    training = panel().head(TRAIN_ROWS).to_csv(index=False).encode()
    dataset = await platform.dataset_id("train", training)
    hp = hyperparameters(
        input_operator_count=FEATURES, hilbert_space_dims=4, epochs=12, batch_size=128, seed=seed,
        optimizer_config={
            "type": "Adam",
            "default_params": {"lr": 0.02},
            "group_params": [{"param_name_contains": ["input_diag"], "params": {"lr": 1e-3}}],
        },
    )  # fmt: skip
    run = await platform.submit(
        dataset, hyperparameters=hp, emulator={"epoch_seconds": 60}, **params
    )
    await platform.advance(HOUR)
    return await platform.run(run["id"])


def runs(platform: Platform, run: dict[str, Any]) -> str:
    return f"{platform.project}/experiment_runs/{run['id']}"


async def deploy(platform: Platform, run: dict[str, Any], **body: Any) -> Any:
    return await platform.client.post(
        f"{runs(platform, run)}/deployments", json={"deployment_name": "d", **body}
    )


async def test_predictions_are_the_trained_models_and_beat_the_mean(
    platform: Platform, backend: Emulator
) -> None:
    run = await trained(platform)
    response = await deploy(platform, run, checkpoint_name="epoch-0012", version="v1.2.3")
    assert response.status_code == 201
    deployment = response.json()
    held_out = panel().tail(400)
    inputs = held_out.drop(columns=[TARGET]).to_csv(index=False)
    answer = await platform.client.post(
        f"{runs(platform, run)}/deployments/{deployment['id']}/inferences/sync",
        json={"dataset_file": inputs, "params": {}},
    )
    assert answer.status_code == 200, answer.text
    predictions = answer.json()["predictions"]
    assert answer.json()["rows"] == 400 and answer.json()["notes"] is None

    checkpoint = backend.files.load_checkpoint(run["id"], "epoch-0012")
    direct = predict({}, checkpoint, params={"dataset_buffer": inputs})["predictions"]
    assert predictions == direct  # exactly trainer.predict on the same checkpoint

    truth = torch.tensor(held_out[TARGET].to_numpy())
    model_mse = float(((torch.tensor(predictions)[:, 0] - truth) ** 2).mean())
    mean_mse = float(((panel().head(TRAIN_ROWS)[TARGET].mean() - truth) ** 2).mean())
    assert model_mse < 0.95 * mean_mse  # beats predicting the training mean, with margin


async def test_criteria_pick_checkpoints_by_loss(platform: Platform) -> None:
    run = await trained(platform)
    checkpoints = (await platform.client.get(f"{runs(platform, run)}/checkpoints")).json()
    losses = {c["name"]: c["metrics"]["loss"] for c in checkpoints}
    smallest = (
        await deploy(platform, run, criterion={"metric": "loss", "value": "smallest"})
    ).json()
    assert smallest["checkpoint_name"] == min(losses, key=losses.get)
    greatest = await deploy(
        platform, run, deployment_name="g", criterion={"metric": "loss", "value": "greatest"}
    )
    assert greatest.json()["checkpoint_name"] == max(losses, key=losses.get)
    largest = await deploy(
        platform, run, deployment_name="l", criterion={"metric": "loss", "value": "largest"}
    )
    assert largest.json()["checkpoint_name"] == greatest.json()["checkpoint_name"]
    threshold = sorted(losses.values())[3]
    under = await deploy(
        platform, run, deployment_name="u",
        criterion={"metric": "loss", "operator": "lte", "value": threshold},
    )  # fmt: skip
    latest_under = [n for n, v in losses.items() if v <= threshold][-1]
    assert under.json()["checkpoint_name"] == latest_under
    none = await deploy(
        platform,
        run,
        deployment_name="n",
        criterion={"metric": "loss", "operator": "lt", "value": -1},
    )
    assert none.status_code == 404 and "not found" in none.json()["detail"]
    wrong = await deploy(
        platform, run, deployment_name="w", criterion={"metric": "accuracy", "value": "smallest"}
    )
    assert wrong.status_code == 422 and "['loss']" in wrong.json()["detail"]
    bad = await deploy(platform, run, deployment_name="b", criterion={"metric": "loss", "value": 3})
    assert bad.status_code == 422 and "operator" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"checkpoint_name": "epoch-0001", "version": "1.0"}, 422, "semantic version"),
        ({"checkpoint_name": "epoch-0099"}, 404, "not found"),
        ({}, 422, "criterion"),
    ],
)
async def test_bad_deployments_are_refused(
    platform: Platform, body: dict[str, Any], status: int, fragment: str
) -> None:
    run = await trained(platform)
    response = await deploy(platform, run, **body)
    assert response.status_code == status and fragment in response.json()["detail"]


async def test_deployment_names_are_unique_and_versions_accept_a_leading_v(
    platform: Platform,
) -> None:
    run = await trained(platform)
    for version in ("v0.0.1", "1.0.0", "2.3.4-rc.1"):
        made = await deploy(
            platform, run, deployment_name=version, checkpoint_name="epoch-0001", version=version
        )
        assert made.status_code == 201 and made.json()["version"] == version
    again = await deploy(platform, run, deployment_name="v0.0.1", checkpoint_name="epoch-0001")
    assert again.status_code == 409


async def test_inference_reads_columns_by_position_and_notes_other_names(
    platform: Platform,
) -> None:
    run = await trained(platform)
    deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
    url = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences/sync"
    rows = panel().tail(5)

    # Columns are read by position, as the platform's predict reads them.
    with_target = await platform.client.post(url, json={"dataset_file": rows.to_csv(index=False)})
    assert with_target.status_code == 422
    assert f"without the target column(s) ['{TARGET}']" in with_target.json()["detail"]
    missing = await platform.client.post(
        url, json={"dataset_file": rows.drop(columns=[TARGET, "feature_02"]).to_csv(index=False)}
    )
    assert missing.status_code == 422 and "takes 77 inputs" in missing.json()["detail"]
    features = rows.drop(columns=[TARGET])
    renamed = await platform.client.post(
        url,
        json={"dataset_file": features.rename(columns={"feature_02": "price"}).to_csv(index=False)},
    )
    same = await platform.client.post(url, json={"dataset_file": features.to_csv(index=False)})
    assert renamed.status_code == 200 and not same.json().get("notes")
    assert renamed.json()["predictions"] == same.json()["predictions"]
    assert "column 3 'price' is read as 'feature_02'" in renamed.json()["notes"][0]


async def test_batch_inference_by_dataset_name_or_path(platform: Platform, tmp_path: Path) -> None:
    run = await trained(platform)
    deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
    url = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences"
    inputs = panel().tail(20).drop(columns=[TARGET])
    await platform.dataset_id("to-score", inputs.to_csv(index=False).encode())
    by_name = await platform.client.post(url, json={"dataset_path": "to-score"})
    assert by_name.status_code == 200 and by_name.json()["dataset"] == "to-score"
    path = tmp_path / "score.csv"
    inputs.to_csv(path, index=False)
    by_path = await platform.client.post(url, json={"dataset_path": str(path)})
    assert by_path.json()["predictions"] == by_name.json()["predictions"]
    missing = await platform.client.post(url, json={"dataset_path": "nope"})
    assert missing.status_code == 404


async def test_deleting_a_run_removes_its_deployments(platform: Platform) -> None:
    run = await trained(platform)
    await deploy(platform, run, checkpoint_name="epoch-0012")
    deleted = await platform.client.delete(runs(platform, run))
    assert deleted.status_code == 200
    gone = await platform.client.get(f"{runs(platform, run)}/deployments")
    assert gone.status_code == 404


async def test_deployments_survive_a_restart(tmp_path: Path) -> None:
    async with emulator(data_dir=tmp_path) as platform:
        run = await trained(platform)
        deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
        inputs = panel().tail(10).drop(columns=[TARGET]).to_csv(index=False)
        url = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences/sync"
        before = (await platform.client.post(url, json={"dataset_file": inputs})).json()

    async with emulator(data_dir=tmp_path) as restarted:
        listed = (await restarted.client.get(f"{runs(restarted, run)}/deployments")).json()
        after = (await restarted.client.post(url, json={"dataset_file": inputs})).json()
    assert [d["id"] for d in listed] == [deployment["id"]]
    assert after["predictions"] == before["predictions"]


async def test_after_a_reset_an_inference_serves_the_new_model_never_the_old(
    backend: Emulator, platform: Platform
) -> None:
    inputs = panel().tail(10).drop(columns=[TARGET]).to_csv(index=False)

    async def deployed_predictions(seed: int) -> tuple[str, str, list[Any]]:
        run = await trained(platform, seed=seed)
        deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
        url = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences/sync"
        answer = await platform.client.post(url, json={"dataset_file": inputs})
        return run["id"], url, answer.json()["predictions"]

    old_id, _, old = await deployed_predictions(seed=3)
    assert (await platform.client.post("/_emulator/reset")).status_code == 200
    await platform.setup()
    new_id, url, served = await deployed_predictions(seed=4)
    assert new_id == old_id  # ids restart after a reset: same run id, same checkpoint name
    assert served != old
    # What the checkpoint on disk predicts now, loaded afresh in this process:
    job = InferenceJob(str(backend.files.root), new_id, "epoch-0012", inputs)
    assert run_inference(job).predictions == served
    assert (await platform.client.post(url, json={"dataset_file": inputs})).json()[
        "predictions"
    ] == served


async def test_odd_inference_input_is_a_client_error(platform: Platform, tmp_path: Path) -> None:
    run = await trained(platform)
    deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
    base = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences"
    surrogate = await platform.client.post(
        f"{base}/sync",
        content=b'{"dataset_file": "x\\ud800,y"}',
        headers={"content-type": "application/json"},
    )
    assert surrogate.status_code == 422 and "UTF-8" in surrogate.json()["detail"]
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("caf\xe9,x\n1,2\n".encode("latin-1"))
    batch = await platform.client.post(base, json={"dataset_path": str(latin)})
    assert batch.status_code == 422 and "UTF-8" in batch.json()["detail"]


async def test_an_inference_whose_worker_dies_is_a_503_and_the_next_one_works(
    pool: LocalProcesses,
) -> None:
    async with emulator(using=pool) as platform:
        run = await trained(platform)
        deployment = (await deploy(platform, run, checkpoint_name="epoch-0012")).json()
        url = f"{runs(platform, run)}/deployments/{deployment['id']}/inferences/sync"
        body = {"dataset_file": panel().tail(10).drop(columns=[TARGET]).to_csv(index=False)}
        first = await platform.client.post(url, json=body)
        assert first.status_code == 200, first.text
        # Every idle worker is stopped, so the next inference is handed to one that cannot
        # answer; that one is killed while the request waits for it.
        stopped = until(pool.idle_pids)
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        try:
            answer = asyncio.create_task(platform.client.post(url, json=body))
            deadline = time.monotonic() + 60
            while not (busy := pool.busy_pids()):  # the request reaches the pool
                assert time.monotonic() < deadline, "the inference never reached a worker"
                await asyncio.sleep(0.005)
            assert busy[0] in stopped
            os.kill(busy[0], signal.SIGKILL)
            died = await answer
        finally:
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        assert died.status_code == 503, died.text
        assert "worker ended before it answered" in died.json()["detail"]
        again = await platform.client.post(url, json=body)  # on a new worker
        assert again.status_code == 200 and again.json() == first.json()
