"""What no input, race or half-written state may do: hang the kernel, leave a run stuck, grow
every write with the run, or stop the server from starting."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.mockserver.platform import Platform as Emulator
from tests.mockserver.helpers import (
    Platform,
    dataset_csv,
    emulator,
    hyperparameters,
)

HOUR = 3600


# 6. Sizes a CPU emulator cannot honour --------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"hsm_model": "pauli", "qubits_count": 40, "hilbert_space_dims": None}, "qubits_count"),
        ({"hsm_model": "pauli", "qubits_count": 700}, "qubits_count"),
        ({"hilbert_space_dims": 10**200}, "hilbert_space_dims"),
        ({"hilbert_space_dims": 1500}, "hilbert_space_dims"),
        ({"epochs": 10**6}, "epochs"),
    ],
)
async def test_sizes_beyond_a_cpu_emulator_are_refused_at_submission(
    platform: Platform, overrides: dict[str, Any], field: str
) -> None:
    dataset = await platform.dataset_id()
    hp = {k: v for k, v in hyperparameters(**overrides).items() if v is not None}
    answer = await platform.client.post(
        f"{platform.project}/experiment_runs",
        json={**platform.run_body(dataset), "params": {"hyperparameters": hp}},
    )
    assert answer.status_code == 422, answer.text
    assert f"params.hyperparameters.{field}" in answer.json()["detail"]
    assert (await platform.client.get(f"{platform.project}/experiment_runs")).json() == []


async def test_a_tiny_epoch_cost_is_refused(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset, emulator={"epoch_seconds": 1e-5})
    answer = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert answer.status_code == 422 and "epoch_seconds" in answer.json()["detail"]


# 10. Wide CSV files ---------------------------------------------------------------------------


async def test_duplicate_columns_are_named_among_forty_thousand(platform: Platform) -> None:
    columns = [f"c{i}" for i in range(40_000)] + ["c7", "c39999"]
    content = (",".join(columns) + "\n" + ",".join("1" for _ in columns) + "\n").encode()
    answer = await platform.upload("wide", content)
    assert answer.status_code == 422
    assert "duplicate column names ['c39999', 'c7']" in answer.json()["detail"]


# 9. Constant-size writes per epoch -------------------------------------------------------------


@pytest.mark.torch
async def test_checkpoint_files_and_run_documents_do_not_grow_with_the_run(
    backend: Emulator, platform: Platform
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(
        dataset, hyperparameters=hyperparameters(epochs=40), emulator={"epoch_seconds": 60}
    )
    await platform.advance(15 * 60)
    live = await platform.run(run["id"])
    document_then = len(json.dumps(backend.store.get("run", run["id"])))
    await platform.advance(HOUR)
    files = backend.files
    sizes = [files.checkpoint(run["id"], f"epoch-{e:04d}").stat().st_size for e in (1, 20, 40)]
    assert max(sizes) - min(sizes) < 64, sizes  # the same record, whatever the epoch
    finished = await platform.run(run["id"])
    assert finished["status"] == "completed"
    # While it ran, the API showed the histories so far (kept apart, one row per epoch).
    assert len(live["metrics"]["val_loss_history"]) == live["metrics"]["epoch"] > 5
    so_far = live["metrics"]["epoch"]
    assert live["metrics"]["val_loss_history"] == finished["metrics"]["val_loss_history"][:so_far]
    assert document_then < 4000


# 4. Recovery is total -------------------------------------------------------------------------


@pytest.mark.torch
async def test_a_restart_repairs_or_fails_whatever_state_it_finds(tmp_path: Path) -> None:
    async with emulator(data_dir=tmp_path) as platform:
        dataset = await platform.dataset_id()
        scheduled = await platform.submit(dataset, "unscheduled")
        broken = await platform.submit(dataset, "unreadable")
    with sqlite3.connect(tmp_path / "qcog-mock.sqlite3") as db:
        rows = dict(db.execute("SELECT id, body FROM resources WHERE kind = 'run'").fetchall())
        half = json.loads(rows[scheduled["id"]])
        half["next_attempt_at"] = None  # as if killed between writing the run and scheduling
        garbage = json.loads(rows[broken["id"]])
        garbage["params"] = {"hyperparameters": {"hsm_model": "quantum-toaster"}}
        for doc in (half, garbage):
            db.execute("UPDATE resources SET body = ? WHERE id = ?", (json.dumps(doc), doc["id"]))

    async with emulator(data_dir=tmp_path) as restarted:  # it starts
        await restarted.advance(2 * HOUR)
        repaired = await restarted.run(scheduled["id"])
        assert repaired["status"] == "completed"
        assert restarted.backend is not None
        failed = restarted.backend.store.get("run", broken["id"])
        assert failed is not None and failed["status"] == "failed"
        assert "could not be recovered after a restart" in failed["errors"][-1]
        events = await restarted.events(broken["id"])
        assert events[-1]["type"] == "run.failed"


# 5. Races against the clock -------------------------------------------------------------------


async def race(platform: Platform, other: Any) -> None:
    """Advance to an attempt's start while ``other`` runs; neither may hang."""
    await asyncio.wait_for(
        asyncio.gather(
            platform.client.post("/_emulator/clock/advance", json={"seconds": 5}), other
        ),
        timeout=60,
    )


@pytest.mark.torch
async def test_delete_override_and_reset_racing_the_clock_never_hang() -> None:
    async with emulator() as platform:
        dataset_csv_bytes = dataset_csv()
        for round_ in range(12):
            dataset = await platform.dataset_id(content=dataset_csv_bytes)
            run = await platform.submit(dataset, f"job-{round_}", emulator={"epoch_seconds": 1})
            runs = f"{platform.project}/experiment_runs"
            await race(platform, platform.client.delete(f"{runs}/{run['id']}"))
            await platform.submit(dataset, "same", emulator={"epoch_seconds": 1})
            body = {**platform.run_body(dataset, "same"), "override": True}
            await race(platform, platform.client.post(runs, json=body))
            await race(platform, platform.client.post("/_emulator/reset"))
            await platform.setup()
        # The kernel still works: a run submitted now completes.
        dataset = await platform.dataset_id()
        run = await platform.submit(dataset, "after", emulator={"epoch_seconds": 1})
        await platform.advance(HOUR)
        assert (await platform.run(run["id"]))["status"] == "completed"


async def test_an_attempt_that_cannot_start_ends_and_never_leaves_the_run_running(
    backend: Emulator, platform: Platform
) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset)  # priced by the cost model, from the dataset's rows
    broken = backend.store.get("dataset", dataset)
    del broken["number_of_rows"]  # a dataset document the cost model cannot read
    backend.store.put("dataset", broken, scope=platform.project_id)
    await platform.advance(HOUR)
    failed = await platform.run(run["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"][0]["outcome"] == "crashed"
    assert "could not start: " in failed["error"] and "number_of_rows" in failed["error"]
