"""Every client method against the real app, in process and over a real socket.

Each test runs twice (the ``connection`` fixture): through ``httpx.ASGITransport`` and through a
uvicorn server on a free port. Assertions are on the envelope and the fields.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from qcog_types.pytorch_models.hyperparameters import (
    GeneralHSModelHyperparameters,
    LossFunctionConfig,
    OptimizerConfig,
)

from qcog_mock.client import (
    AdminClient,
    ClientConnectorError,
    EmulatorClient,
    EmulatorError,
    ExperimentClient,
    ProjectClient,
    RunWaitError,
    wait_for_run,
)
from qcog_mock.client.adapters import load_dataframe
from qcog_mock.mockserver.platform import Platform
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel
from tests.client.conftest import KEY

FEATURES = 4


def frame(rows: int = 60) -> pd.DataFrame:
    return synthetic_panel(dates=1, assets=rows, features=FEATURES, seed=2)


def hyperparameters(**overrides: Any) -> GeneralHSModelHyperparameters:
    values: dict[str, Any] = {
        "hsm_model": "general",
        "epochs": 4,
        "batch_size": 16,
        "targets": TARGET,
        "input_operator_count": FEATURES,
        "output_operator_count": 1,
        "hilbert_space_dims": 2,
        "optimizer_config": OptimizerConfig(type="Adam", default_params={"lr": 0.02}),
        "loss_fn_config": LossFunctionConfig(type="MSELoss"),
    }
    values.update(overrides)
    return GeneralHSModelHyperparameters(**values)


def response(result: dict[str, Any]) -> Any:
    assert set(result) == {"response"}, result
    return result["response"]


def error(result: dict[str, Any]) -> str:
    assert set(result) == {"error"}, result
    return str(result["error"])


async def trained_run(client: ExperimentClient, name: str = "trained", **parameters: Any) -> dict:
    await client.project_client.upload_dataset(load_dataframe(frame()), "data", override=True)
    submitted = await client.run_experiment(
        name,
        "a contract run",
        experiment_name="pytorch-models",
        environment_name="python3.12",
        dataset_name="data",
        parameters={
            "hyperparameters": hyperparameters(),
            "emulator": {"epoch_seconds": 60},
            **parameters,
        },
    )
    response(submitted)
    return await wait_for_run(client, name)


# AdminClient ----------------------------------------------------------------------------------


async def test_admin_whoami_users_and_keys(connection: dict[str, Any]) -> None:
    async with AdminClient(api_key=KEY, **connection) as admin:
        who = response(await admin.whoami())
        assert who["project_name"] == "qcog-mock" and who["user_id"]
        assert "not found" in error(await admin.get_user_by_email("new@example.com"))
        created = response(await admin.get_or_create_user("new@example.com", "user", "New"))
        assert created["email"] == "new@example.com"
        again = response(await admin.get_or_create_user("new@example.com", "user", "New"))
        assert again["id"] == created["id"]
        assert response(await admin.get_user_by_email("new@example.com"))["id"] == created["id"]
        other = response(
            await admin.create_user(email="b@example.com", system_role="admin", name="B")
        )
        assert other["system_role"] == "admin"
        key = response(await admin.generate_api_key(created["id"], who["project_id"]))
        assert key["x_api_key"] and key["project_id"] == who["project_id"]
    async with AdminClient(
        basic_auth_username="admin", basic_auth_password="admin", **connection
    ) as basic:
        admin_user = response(await basic.get_admin_user())
        assert admin_user["system_role"] == "admin"
        one_time = response(await basic.one_time_create_api_key(created["id"]))
        assert one_time["user_id"] == created["id"] and one_time["x_api_key"]


async def test_admin_projects_and_gpus(connection: dict[str, Any]) -> None:
    async with AdminClient(api_key=KEY, **connection) as admin:
        projects = response(await admin.list_projects(limit=100, offset=0))
        assert [p["name"] for p in projects] == ["qcog-mock"]
        made = response(
            await admin.create_project(
                name="lab", description="d", user_name="Lab User", user_email="lab@example.com"
            )
        )
        assert set(made) == {"user", "project", "api_key"}
        project_id = made["project"]["id"]
        same = response(await admin.get_or_create_project(name="lab", description="d"))
        assert same["id"] == project_id
        viewer = response(
            await admin.create_user(email="v@example.com", system_role="user", name="V")
        )
        link = response(await admin.add_user_to_project(viewer["id"], project_id, "viewer"))
        assert (link["user_id"], link["role"]) == (viewer["id"], "viewer")
        owner = await admin.add_user_to_project(made["user"]["id"], project_id, "owner")
        assert "already in project" in error(owner)  # create_project made them its owner
        assert response(await admin.add_gpu_to_project(project_id, "T4"))["allowed_gpus"] == ["T4"]
        assert response(await admin.add_gpu_to_project(project_id, "L4"))["allowed_gpus"] == [
            "T4",
            "L4",
        ]
        assert response(await admin.remove_gpu_from_project(project_id, "T4"))["allowed_gpus"] == [
            "L4"
        ]
        assert "unknown GPU" in error(await admin.add_gpu_to_project(project_id, "Z9"))


async def test_admin_environments_and_experiments(connection: dict[str, Any]) -> None:
    async with AdminClient(api_key=KEY, **connection) as admin:
        with pytest.raises(ValueError, match="No experiment ID found"):
            _ = admin.experiment_id
        with pytest.raises(ValueError, match="No environment ID found"):
            _ = admin.environment_id
        cpu = response(await admin.list_environments(instance="cpu"))
        assert [e["name"] for e in cpu] == ["python3.12"]
        assert len(response(await admin.list_environments())) == 2
        env = response(await admin.get_environment("py3.12-cuda", "name", load=True))
        assert admin.environment_id == env["id"] and env["instance"] == "gpu"
        made = response(await admin.create_environment("custom", docker_image="img", tag="1"))
        assert made["configuration"]["docker_image"] == "img"
        assert response(await admin.delete_environment("custom", "name"))["deleted"] is True
        experiment = response(await admin.get_experiment("pytorch-models", "name", load=True))
        assert admin.experiment_id == experiment["id"]
        created = response(await admin.create_experiment("mine", file_path="mine.zip"))
        assert created["format"] == "zip"
        assert [e["name"] for e in response(await admin.list_experiments())] == [
            "pytorch-models",
            "mine",
        ]
        assert "not found" in error(await admin.get_experiment("nope", "name"))


async def test_login_and_logout_use_the_local_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("QCOG_ENV", raising=False)
    assert (
        response(AdminClient.login("  saved-key\n")) == "Login successful - Your API key is saved"
    )
    assert "Log out first" in error(AdminClient.login("another"))
    client = ProjectClient(base_url="http://testserver/api")
    assert client.http_client._client.headers["Authorization"] == "x-api-key saved-key"
    await client.aclose()
    AdminClient.logout()
    assert not (tmp_path / ".qcogclient" / "store.json").read_text().count("saved-key")


# ProjectClient --------------------------------------------------------------------------------


async def test_project_datasets_upload_list_get_create(
    connection: dict[str, Any], tmp_path: Path
) -> None:
    async with ProjectClient(api_key=KEY, **connection) as project:
        who = response(await project.whoami())
        assert await project.project_id() == who["project_id"]
        path = tmp_path / "data.csv"
        frame(40).to_csv(path, index=False)
        from_path = response(await project.upload_dataset(path, "from-path", description="p"))
        assert from_path["number_of_rows"] == 40 and from_path["description"] == "p"
        with path.open("rb") as handle:
            from_file = response(await project.upload_dataset(handle, "from-file"))
        from_frame = response(await project.upload_dataset(load_dataframe(frame(30)), "from-frame"))
        assert (from_file["number_of_rows"], from_frame["number_of_rows"]) == (40, 30)
        assert "already exists" in error(
            await project.upload_dataset(load_dataframe(frame()), "from-frame")
        )
        replaced = response(
            await project.upload_dataset(load_dataframe(frame(20)), "from-frame", override=True)
        )
        assert replaced["number_of_rows"] == 20
        listed = response(await project.list_datasets(limit=2, skip=1))
        assert [d["name"] for d in listed] == ["from-file", "from-frame"]
        got = response(await project.get_dataset(dataset_id="from-path", identifier="name"))
        assert got["id"] == from_path["id"]
        local = response(
            await project.create_dataset(name="local", dataset_location=str(path), credentials=None)
        )
        assert local["number_of_rows"] == 40
        s3 = await project.create_dataset(
            name="s3", dataset_location="s3://bucket/x.csv", credentials={"AWS_ACCESS_KEY_ID": "k"}
        )
        assert response(s3)["number_of_rows"] is None  # a reference: no --s3-root here
        with pytest.raises(FileNotFoundError, match="No such file"):  # the real one reads it
            await project.upload_dataset(tmp_path / "none.csv", "x")


# ExperimentClient -----------------------------------------------------------------------------


async def test_run_experiment_every_way_of_naming_things(client: ExperimentClient) -> None:
    dataset = response(await client.project_client.upload_dataset(load_dataframe(frame()), "data"))
    experiment = response(await client.select_experiment(experiment_name="pytorch-models"))
    environment = response(await client.select_environment(environment_name="python3.12"))
    ways = [
        {"experiment_name": "pytorch-models", "instance": "cpu", "dataset_name": "data"},
        {
            "experiment_id": experiment["id"],
            "environment_id": environment["id"],
            "dataset_id": dataset["id"],
        },
        {
            "experiment_name": "pytorch-models",
            "environment_name": "py3.12-cuda",
            "dataset_name": "data",
        },
    ]
    for index, way in enumerate(ways):
        hp = hyperparameters() if index % 2 == 0 else hyperparameters().model_dump()
        started = response(
            await client.run_experiment(
                f"run-{index}", "d", parameters={"hyperparameters": hp}, **way
            )
        )
        assert started["status"] == "Experiment Started"
        assert set(started) == {"status", "experiment_run"}  # the real shape: no run_id
        assert started["experiment_run"]["status"] == "pending"
    gpu = response(await client.get_experiment_run("run-2"))
    assert gpu["environment_id"] != environment["id"]
    runs = response(await client.get_experiment_runs(experiment_name="pytorch-models"))
    assert [r["name"] for r in runs] == ["run-2", "run-1", "run-0"]
    oldest = response(await client.get_experiment_runs(limit=1, skip=0, descending=False))
    assert [r["name"] for r in oldest] == ["run-0"]
    duplicate = await client.run_experiment(
        "run-0", parameters={"hyperparameters": hyperparameters()}, **ways[0]
    )
    assert "already exists" in error(duplicate)
    replaced = await client.run_experiment(
        "run-0", parameters={"hyperparameters": hyperparameters()}, override=True, **ways[0]
    )
    assert response(replaced)["experiment_run"]["name"] == "run-0"
    webhook = await client.run_experiment(
        "hooked",
        parameters={"hyperparameters": hyperparameters()},
        local_webhook_url="http://127.0.0.1:9999/hook",
        **ways[0],
    )
    assert response(webhook)["experiment_run"]["local_webhook_url"] == "http://127.0.0.1:9999/hook"


@pytest.mark.torch
async def test_a_run_from_submission_to_checkpoints_and_deletion(
    client: ExperimentClient, emulator: EmulatorClient
) -> None:
    run = await trained_run(client, timeout=150, retries=1)
    assert run["status"] == "completed"
    assert [a["outcome"] for a in run["attempts"]] == ["timed_out", "completed"]
    fetched = response(await client.get_experiment_run("trained"))
    assert fetched["metrics"]["epochs_completed"] == 4
    checkpoints = response(await client.list_experiment_run_checkpoints("trained"))
    assert [c["name"] for c in checkpoints] == [
        "epoch-0001",
        "epoch-0002",
        "epoch-0003",
        "epoch-0004",
    ]
    chosen = response(
        await client.select_experiment_run_checkpoint(
            run_name="trained", checkpoint_name="epoch-0002"
        )
    )
    assert chosen["epoch"] == 2 and chosen["attempt"] == 1
    events = await emulator.events(run["id"])
    assert events[0]["type"] == "run.created" and events[-1]["type"] == "run.completed"
    deleted = response(await client.delete_experiment_run("trained"))
    assert deleted["deleted"] is True
    assert "not found" in error(await client.get_experiment_run("trained"))


@pytest.mark.torch
async def test_deployments_and_inferences(client: ExperimentClient, tmp_path: Path) -> None:
    await client.project_client.upload_dataset(load_dataframe(frame()), "data")
    await client.run_experiment(
        "pending-run", experiment_name="pytorch-models", instance="cpu", dataset_name="data",
        parameters={"hyperparameters": hyperparameters()},
    )  # fmt: skip
    warning = await client.deploy_checkpoint(
        "d1", "v0.0.1", run_name="pending-run", checkpoint_name="epoch-0001"
    )
    assert warning == {
        "warning": "Experiment run is not completed yet. "
        "You might be deploying an incomplete checkpoint."
    }
    await trained_run(client)
    deployed = response(
        await client.deploy_checkpoint(
            "d1", "v0.0.1", "first", run_name="trained", checkpoint_name="epoch-0003"
        )
    )
    assert (deployed["deployment_name"], deployed["checkpoint_name"]) == ("d1", "epoch-0003")
    assert deployed["id"] == deployed["deployment_id"] and deployed["status"] == "active"
    best = response(
        await client.create_deployment(
            deployment_name="d2",
            version="1.0.0",
            run_name="trained",
            criterion={"metric": "loss", "value": "smallest"},
        )
    )
    losses = {
        c["name"]: c["metrics"]["loss"]
        for c in response(await client.list_experiment_run_checkpoints("trained"))
    }
    assert best["checkpoint_name"] == min(losses, key=losses.get)
    listed = response(await client.list_deployments(run_name="trained"))
    assert [d["name"] for d in listed] == ["d1", "d2"]
    assert (
        response(await client.select_deployment(run_name="trained", deployment_name="d1"))["id"]
        == deployed["id"]
    )
    inputs = frame().drop(columns=[TARGET]).head(5)
    sync = response(await client.sync_inference(inputs, run_name="trained", deployment_name="d1"))
    assert len(sync["predictions"]) == 5 and len(sync["predictions"][0]) == 1
    path = tmp_path / "inputs.csv"
    inputs.to_csv(path, index=False)
    batch = response(
        await client.run_inferences(str(path), run_name="trained", deployment_name="d1")
    )
    assert batch["predictions"] == sync["predictions"]
    assert "version" in error(
        await client.create_deployment(
            "d3", "one", run_name="trained", checkpoint_name="epoch-0001"
        )
    )


@pytest.mark.torch
async def test_wait_for_run_in_auto_mode_and_the_emulator_client(
    client: ExperimentClient, emulator: EmulatorClient
) -> None:
    clock = await emulator.set_mode("auto")
    assert clock["mode"] == "auto"
    run = await trained_run(client)
    assert run["status"] == "completed"
    after = await emulator.clock()
    assert after["now"] == run["attempts"][-1]["ended_at"]
    assert (await emulator.reset())["reset"] is True
    assert await emulator.events() == []


async def test_a_run_that_cannot_finish_is_reported_not_waited_for(
    client: ExperimentClient, emulator: EmulatorClient, backend: Platform
) -> None:
    await client.project_client.upload_dataset(load_dataframe(frame()), "data")
    submitted = response(
        await client.run_experiment(
            "stuck", experiment_name="pytorch-models", environment_name="python3.12",
            dataset_name="data", parameters={"hyperparameters": hyperparameters()},
        )
    )  # fmt: skip
    with pytest.raises(RunWaitError, match=r"^Run 'stuck' is pending: not done after 0 s$"):
        await wait_for_run(client, "stuck", timeout=0)  # a manual clock: nobody advanced it
    # A run whose attempt the server has lost (its process cancelled behind its back): a
    # manual clock with nothing scheduled can never finish it.
    backend.engine.cancel(submitted["experiment_run"]["id"])
    with pytest.raises(RunWaitError) as stuck:
        await wait_for_run(client, "stuck")
    assert str(stuck.value) == (
        "Run 'stuck' is pending: nothing is scheduled on the manual clock at 2026-01-01T00:00:00Z"
    )
    with pytest.raises(RunWaitError, match=r"Could not read the run: .*not found"):
        await wait_for_run(client, "no-such-run")


async def test_the_emulator_client_reads_runs_and_deliveries(
    client: ExperimentClient, emulator: EmulatorClient
) -> None:
    run = await trained_run(client)
    assert [r["name"] for r in await emulator.runs()] == ["trained"]
    assert (await emulator.run("trained"))["id"] == run["id"]
    assert await emulator.deliveries(run["id"]) == []  # no webhook URL, no endpoint
    with pytest.raises(EmulatorError) as missing:
        await emulator.run("nope")
    assert missing.value.status == 404 and "not found" in str(missing.value)
    assert str(missing.value).startswith("GET /api/v1/projects/")


# Client-side bad input ------------------------------------------------------------------------


async def test_unknown_names_come_back_as_errors(client: ExperimentClient) -> None:
    await client.project_client.upload_dataset(load_dataframe(frame()), "data")
    hp = {"hyperparameters": hyperparameters()}
    known = {"experiment_name": "pytorch-models", "instance": "cpu", "dataset_name": "data"}
    cases = [
        ({**known, "experiment_name": "nope"}, "Error fetching experiment"),
        ({**known, "instance": None, "environment_name": "nope"}, "Error fetching environment"),
        ({**known, "dataset_name": "nope"}, "Error fetching dataset"),
    ]
    for names, message in cases:
        text = error(await client.run_experiment("x", parameters=hp, **names))
        assert message in text and "not found" in text
    assert "not found" in error(await client.get_experiment_run("no-such-run"))
    fresh = ExperimentClient(api_key=KEY, http_client=client.http_client)
    assert "No experiment run selected" in error(await fresh.get_experiment_run())
    assert "No experiment run selected" in error(await fresh.list_experiment_run_checkpoints())
    assert "No experiment ID or name provided." in error(await fresh.select_experiment())
    bad = await client.run_experiment(
        "x", experiment_name="pytorch-models", instance="cpu", dataset_name="data",
        parameters={"hyperparameters": hyperparameters(), "timeout": 100_000},
    )  # fmt: skip
    assert "params.timeout" in error(bad)


async def test_no_key_and_no_server_raise_as_in_the_real_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("QCOG_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"^No API key found\. Either provide an API key or"):
        ExperimentClient(base_url="http://127.0.0.1:9/api")  # as the real client: at once
    async with ExperimentClient(api_key="k", base_url="http://127.0.0.1:9/api") as unreachable:
        with pytest.raises(ClientConnectorError, match="Cannot connect to host http://127"):
            await unreachable.get_experiment_run("x")
    (tmp_path / ".env").write_text("QCOG_API_KEY=from-dotenv\n")
    from_env_file = ProjectClient(base_url="http://127.0.0.1:9/api")
    assert from_env_file.http_client._client.headers["Authorization"] == "x-api-key from-dotenv"
    await from_env_file.aclose()


async def test_wrong_key_is_an_error_envelope(connection: dict[str, Any]) -> None:
    async with ExperimentClient(api_key="wrong", **connection) as client:
        assert "Invalid API key" in error(await client.get_experiment_run("x"))


def test_qcog_env_picks_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from qcog_mock.client import get_base_url

    monkeypatch.delenv("QCOG_ENV", raising=False)
    assert get_base_url() == "http://localhost:8001/api"
    monkeypatch.setenv("QCOG_ENV", "TEST")
    assert get_base_url() == "http://testserver:50000/api"
    monkeypatch.setenv("QCOG_ENV", "MOON")
    with pytest.raises(ValueError, match="Invalid environment: MOON"):
        get_base_url()


def test_exported_members() -> None:
    import qcogclient
    from qcogclient.qcog import adapters, typ

    from qcog_mock import client

    # As httpx's test: every public name the package holds is exported, and nothing else.
    public = {
        name
        for name, value in vars(client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(client.__all__) == sorted(public)
    assert qcogclient.ExperimentClient is ExperimentClient
    assert adapters.load_dataframe is load_dataframe
    assert typ.is_error({"error": "x"}) and not typ.is_error({"response": 1})
