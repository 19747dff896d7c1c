"""Never kinder than the platform: what fails there fails here, the same way.

Each test is named after the documentation page and example it checks, and asserts the outcome
the platform would give — through the compat client and over raw HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from qcog_types.pytorch_models.hyperparameters import (
    GeneralHSModelHyperparameters,
    GradientClippingConfig,
    LossFunctionConfig,
    OptimizerConfig,
    PerGroupOptimizerParams,
)

from qcog_mock.client import AdminClient, ExperimentClient, ProjectClient
from qcog_mock.client.adapters import load_dataframe
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel

KEY = "fidelity-key"
API = "http://testserver/api"


@pytest.fixture
def transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("QCOG_API_KEY", "QCOG_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no saved login
    monkeypatch.chdir(tmp_path)  # no .env
    with QcogPlatform.in_process(Settings(api_key=KEY, clock="manual")) as environment:
        yield environment.transport


def client(transport: Any) -> ExperimentClient:
    return ExperimentClient(api_key=KEY, base_url=API, transport=transport)


def raw(transport: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"x-api-key {KEY}"},
    )


def hyperparameters(**overrides: Any) -> GeneralHSModelHyperparameters:
    values: dict[str, Any] = {
        "hsm_model": "general", "epochs": 2, "batch_size": 16, "targets": TARGET,
        "input_operator_count": 4, "output_operator_count": 1, "hilbert_space_dims": 2,
        "optimizer_config": OptimizerConfig(type="Adam", default_params={"lr": 0.02}),
        "loss_fn_config": LossFunctionConfig(type="MSELoss"),
        **overrides,
    }  # fmt: skip
    return GeneralHSModelHyperparameters(**values)


async def submitted(transport: Any, name: str = "job", **parameters: Any) -> dict[str, Any]:
    async with client(transport) as experiments:
        frame = synthetic_panel(dates=1, assets=60, features=4, seed=1)
        await experiments.project_client.upload_dataset(load_dataframe(frame), "data")
        return await experiments.run_experiment(
            name, experiment_name="pytorch-models", dataset_name="data", instance="cpu",
            parameters={"hyperparameters": hyperparameters(), **parameters},
        )  # fmt: skip


# Authentication ------------------------------------------------------------------------------


def test_authentication__no_api_key_is_a_value_error_at_construction(transport: Any) -> None:
    message = r"^No API key found\. Either provide an API key or login first\.$"
    with pytest.raises(ValueError, match=message):
        ExperimentClient(base_url=API, transport=transport)
    with pytest.raises(ValueError, match="No API key found"):
        ProjectClient(base_url=API, transport=transport)


# Training runs ---------------------------------------------------------------------------------


async def test_training_runs__run_experiment_returns_status_and_experiment_run_only(
    transport: Any,
) -> None:
    result = await submitted(transport)
    assert set(result["response"]) == {"status", "experiment_run"}
    assert result["response"]["status"] == "Experiment Started"
    with pytest.raises(KeyError):
        result["response"]["run_id"]  # the docs' line fails as it does with the real client


def test_pytorch_models__the_stand_in_takes_target_only_with_a_warning() -> None:
    # The real qcog_types: ValidationError, targets Field required. The stand-in (a kept
    # difference) takes the guides' spelling and warns, saying what the real package does.
    data = {k: v for k, v in hyperparameters().model_dump().items() if k != "targets"}
    with pytest.warns(UserWarning, match="the real qcog_types refuses it") as caught:
        model = GeneralHSModelHyperparameters(**data, target=TARGET)
    assert model.targets == TARGET and "targets Field required" in str(caught[0].message)


async def test_pytorch_models__the_current_types_need_targets_and_refuse_target(
    transport: Any,
) -> None:
    await submitted(transport, "first")
    async with raw(transport) as http:
        project = (await http.get("/api/v1/whoami")).json()["project_id"]
        runs = f"/api/v1/projects/{project}/experiment_runs"
        run = (await http.get(f"{runs}/first", params={"identifier": "name"})).json()
        assert run["params"]["hyperparameters"]["targets"] == TARGET
        body = {
            key: run[key] for key in ("experiment_id", "environment_id", "dataset_id")
        } | {"name": "old-spelling", "params": {"hyperparameters": {
            **run["params"]["hyperparameters"], "target": TARGET}}}  # fmt: skip
        del body["params"]["hyperparameters"]["targets"]
        refused = await http.post(f"/api/v1/projects/{project}/experiment_runs", json=body)
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail.startswith("params.hyperparameters.target:") and "targets" in detail
        del body["params"]["hyperparameters"]["target"]
        missing = await http.post(f"/api/v1/projects/{project}/experiment_runs", json=body)
        assert missing.status_code == 422 and "targets" in missing.json()["detail"]
        # Both: the platform's models ignore the unknown key.
        body["name"] = "both-spellings"
        body["params"]["hyperparameters"] |= {"targets": TARGET, "target": "some_other_column"}
        accepted = await http.post(f"/api/v1/projects/{project}/experiment_runs", json=body)
        assert accepted.status_code == 201, accepted.text
        stored = accepted.json()["params"]["hyperparameters"]
        assert stored["targets"] == TARGET and "target" not in stored


@pytest.mark.torch
async def test_training_runs__error_appears_only_when_the_run_failed(transport: Any) -> None:
    await submitted(transport, "fine")
    async with client(transport) as experiments:
        pending = (await experiments.get_experiment_run("fine"))["response"]
        assert "error" not in pending  # the docs test "'error' in result['response']"
        listed = (await experiments.get_experiment_runs())["response"]
        assert all("error" not in r for r in listed)
    async with raw(transport) as http:
        project = (await http.get("/api/v1/whoami")).json()["project_id"]
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        runs = f"/api/v1/projects/{project}/experiment_runs"
        run = (await http.get(f"{runs}/fine", params={"identifier": "name"})).json()
        assert run["status"] == "completed" and "error" not in run
    bad = await submitted(transport, "broken", timeout=60, emulator={"epoch_seconds": 120})
    assert "response" in bad
    async with client(transport) as experiments, raw(transport) as http:
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        failed = (await experiments.get_experiment_run("broken"))["response"]
    assert failed["status"] == "failed" and failed["error"] == failed["errors"][-1]


# Deployment and inference ----------------------------------------------------------------------


async def test_deployment__create_deployment_takes_deployment_name_not_name(
    transport: Any,
) -> None:
    async with client(transport) as experiments:
        with pytest.raises(TypeError, match="name"):
            await experiments.create_deployment(name="my-model", run_name="job")  # type: ignore[call-arg]


async def test_dataset_management__upload_takes_a_path_or_a_file_and_refuses_str_or_dataframe(
    transport: Any, tmp_path: Path
) -> None:
    # As the newest public client: _file.load passes file objects, reads a Path, refuses a str;
    # the page's adapters turn a CSV path or a DataFrame into the stream it takes.
    from qcogclient.qcog.adapters import load_csv
    from qcogclient.qcog.adapters import load_dataframe as adapt

    frame = synthetic_panel(dates=1, assets=5, features=4, seed=2)
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    async with client(transport) as experiments:
        project = experiments.project_client
        with pytest.raises(NotImplementedError, match=r"^Loading from string is not supported$"):
            await project.upload_dataset(str(path), "as-str")
        with pytest.raises(ValueError, match=r"^Invalid file type$"):
            await project.upload_dataset(frame, "as-frame")
        rows = [(await project.upload_dataset(path, "as-path"))["response"]["number_of_rows"]]
        with path.open("rb") as handle:
            rows.append(
                (await project.upload_dataset(handle, "as-file"))["response"]["number_of_rows"]
            )
        loaded = load_csv(path)
        assert (loaded["number_of_rows"], loaded["number_of_columns"]) == (6, 5)  # header counts
        for name, stream in [("via-load-csv", loaded["file"]), ("via-frame", adapt(frame))]:
            rows.append((await project.upload_dataset(stream, name))["response"]["number_of_rows"])
    assert rows == [5, 5, 5, 5]


def test_client__qcogclient_qcog_has_adapters_and_no_models() -> None:
    from qcogclient.qcog import adapters

    assert callable(adapters.load_csv) and callable(adapters.load_dataframe)
    # One guide imports the models from here; the real package has no such module.
    with pytest.raises(ModuleNotFoundError, match=r"qcogclient\.qcog\.models"):
        import qcogclient.qcog.models  # noqa: F401


@pytest.mark.torch
async def test_inference__sync_inference_refuses_a_str_and_takes_a_path_or_a_frame(
    transport: Any, tmp_path: Path
) -> None:
    await submitted(transport, "job")
    inputs = synthetic_panel(dates=1, assets=5, features=4, seed=2).drop(columns=[TARGET])
    path = tmp_path / "inputs.csv"
    inputs.to_csv(path, index=False)
    async with client(transport) as experiments, raw(transport) as http:
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        await experiments.create_deployment(
            "d", run_name="job", criterion={"metric": "loss", "value": "smallest"}
        )
        with pytest.raises(NotImplementedError, match=r"^Loading from string is not supported$"):
            await experiments.sync_inference(str(path), deployment_name="d", run_name="job")
        as_path = await experiments.sync_inference(path, deployment_name="d", run_name="job")
        as_frame = await experiments.sync_inference(inputs, deployment_name="d", run_name="job")
    assert as_path["response"]["predictions"] == as_frame["response"]["predictions"]
    assert len(as_path["response"]["predictions"]) == 5


async def test_deployment__deploy_checkpoint_on_a_missing_run_is_a_key_error(
    transport: Any,
) -> None:
    # The real client reads the run's ["response"] without checking for an error.
    async with client(transport) as experiments:
        with pytest.raises(KeyError, match=r"^'response'$"):
            await experiments.deploy_checkpoint("d", run_name="no-such-run")


async def test_client__an_unreachable_server_raises() -> None:
    # The real client lets aiohttp's ClientConnectorError (an OSError) escape.
    unreachable = ExperimentClient(api_key=KEY, base_url="http://127.0.0.1:9/api")
    async with unreachable:
        with pytest.raises(
            ConnectionError, match=r"^Cannot connect to host http://127\.0\.0\.1:9/"
        ):
            await unreachable.project_client.whoami()


# Admin operations ------------------------------------------------------------------------------


async def test_admin_operations__every_documented_gpu_type_is_accepted(transport: Any) -> None:
    admin_client = AdminClient(
        basic_auth_username="admin", basic_auth_password="admin", base_url=API, transport=transport
    )
    async with admin_client as admin:
        project = (
            await admin.create_project(
                name="gpus", description="GPU types", user_name="u", user_email="u@x.io"
            )
        )["response"]["project"]
        for gpu in ("T4", "L4", "A10G", "A100-40GB", "A100-80GB", "H100", "V100"):
            added = await admin.add_gpu_to_project(project["id"], gpu)
            assert "response" in added, (gpu, added)
        assert "H100" in added["response"]["allowed_gpus"]
    result = await submitted(transport, "on-h100", gpu_type="H100")
    assert result["response"]["experiment_run"]["params"]["gpu_type"] == "H100"


# Dataset management: S3 references -------------------------------------------------------------

SECRET = "s3cr3t-value-never-shown"
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": SECRET,
                  "AWS_REGION": "us-east-1"}  # fmt: skip


async def test_dataset_management__an_s3_reference_is_stored_and_a_run_on_it_fails_at_once(
    transport: Any,
) -> None:
    async with client(transport) as experiments, raw(transport) as http:
        created = await experiments.project_client.create_dataset(
            name="from-s3", dataset_location="s3://my-bucket/path/data.csv",
            credentials=S3_CREDENTIALS,
        )  # fmt: skip
        dataset = created["response"]
        assert dataset["configuration"]["dataset_location"] == "s3://my-bucket/path/data.csv"
        assert dataset["number_of_rows"] is None and dataset["columns"] == []
        await experiments.run_experiment(
            "on-s3", experiment_name="pytorch-models", dataset_name="from-s3", instance="cpu",
            parameters={"hyperparameters": hyperparameters(), "retries": 3},
        )  # fmt: skip
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        run = (await experiments.get_experiment_run("on-s3"))["response"]
        project = (await http.get("/api/v1/whoami")).json()["project_id"]
        answers = [
            await http.get(f"/api/v1/projects/{project}/datasets"),
            await http.get(f"/api/v1/projects/{project}/datasets/{dataset['id']}"),
            await http.get("/api/v1/whoami"),
            await http.get("/_emulator/events"),
        ]
    assert run["status"] == "failed" and len(run["attempts"]) == 1  # not retried
    assert run["error"].endswith(
        "would repeat on every attempt, so the run failed without retrying: could not start: "
        "dataset 'from-s3' is at s3://my-bucket/path/data.csv: the emulator has no S3 access: "
        "upload the file, or serve with --s3-root DIR"
    )
    assert all(a.status_code == 200 and SECRET not in a.text for a in answers)
    assert SECRET not in str(created)


@pytest.mark.torch
async def test_dataset_management__a_batch_inference_from_s3_without_access_says_why(
    transport: Any,
) -> None:
    await submitted(transport, "job")
    async with client(transport) as experiments, raw(transport) as http:
        await experiments.project_client.create_dataset(
            name="from-s3", dataset_location="s3://my-bucket/inputs.csv", credentials=None
        )
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        deployed = await experiments.create_deployment(
            "d", run_name="job", criterion={"metric": "loss", "value": "smallest"}
        )
        project = (await http.get("/api/v1/whoami")).json()["project_id"]
        run_id = deployed["response"]["run_id"]
        inferences = (
            f"/api/v1/projects/{project}/experiment_runs/{run_id}"
            f"/deployments/{deployed['response']['id']}/inferences"
        )
        by_url = await http.post(inferences, json={"dataset_path": "s3://my-bucket/x.csv"})
        by_name = await http.post(inferences, json={"dataset_path": "from-s3"})
    no_access = "the emulator has no S3 access: upload the file, or serve with --s3-root DIR."
    assert (by_url.status_code, by_url.json()["detail"]) == (400, f"dataset_path: {no_access}")
    assert (by_name.status_code, by_name.json()["detail"]) == (
        400,
        f"dataset_path: dataset 'from-s3' is at s3://my-bucket/inputs.csv: {no_access}",
    )


@pytest.mark.parametrize(
    ("location", "status", "detail"),
    [
        ("s3://B/data.csv", 422, "is not an S3 object URL; give it as s3://bucket/key"),
        ("s3://bucket", 422, "is not an S3 object URL"),
        ("s3://bucket/dir/", 422, "is not an S3 object URL"),
    ],
)
async def test_dataset_management__a_malformed_s3_url_is_refused_naming_the_field(
    transport: Any, location: str, status: int, detail: str
) -> None:
    async with raw(transport) as http:
        project = (await http.get("/api/v1/whoami")).json()["project_id"]
        body = {"name": "x", "configuration": {"dataset_location": location}}
        answer = await http.post(f"/api/v1/projects/{project}/datasets", json=body)
        stored = (await http.get(f"/api/v1/projects/{project}/datasets")).json()
    assert stored == []  # refused before anything is stored
    assert answer.status_code == status
    assert answer.json()["detail"].startswith(f"configuration.dataset_location: '{location}' ")
    assert detail in answer.json()["detail"]


@pytest.fixture
def s3_root(tmp_path: Path) -> Path:
    """A folder standing for S3: s3://my-bucket/path/data.csv is its my-bucket/path/data.csv."""
    obj = tmp_path / "s3" / "my-bucket" / "path" / "data.csv"
    obj.parent.mkdir(parents=True)
    frame = synthetic_panel(dates=1, assets=60, features=4, seed=1)
    frame.to_csv(obj, index=False)
    frame.drop(columns=[TARGET]).head(7).to_csv(obj.with_name("inputs.csv"), index=False)
    (tmp_path / "s3" / "other-bucket").mkdir()
    (tmp_path / "s3" / "other-bucket" / "x.csv").write_text("a,b\n1,2\n")
    return tmp_path / "s3"


@pytest.mark.torch
async def test_dataset_management__with_an_s3_root_the_documented_example_runs_offline(
    s3_root: Path,
) -> None:
    settings = Settings(api_key=KEY, clock="manual", s3_root=s3_root)
    with QcogPlatform.in_process(settings) as environment:
        transport = environment.transport
        async with client(transport) as experiments, raw(transport) as http:
            created = await experiments.project_client.create_dataset(
                name="from-s3", dataset_location="s3://my-bucket/path/data.csv",
                credentials=S3_CREDENTIALS,
            )  # fmt: skip
            assert created["response"]["number_of_rows"] == 60, created
            await experiments.run_experiment(
                "on-s3", experiment_name="pytorch-models", dataset_name="from-s3",
                instance="cpu", parameters={"hyperparameters": hyperparameters()},
            )  # fmt: skip
            await http.post("/_emulator/clock/advance", json={"seconds": 3600})
            run = (await experiments.get_experiment_run("on-s3"))["response"]
            project = (await http.get("/api/v1/whoami")).json()["project_id"]
            datasets = f"/api/v1/projects/{project}/datasets"
            outside = {"name": "y", "configuration": {
                "dataset_location": "s3://my-bucket/../other-bucket/x.csv"}}  # fmt: skip
            escaped = await http.post(datasets, json=outside)
            absent = {"name": "z", "configuration": {"dataset_location": "s3://my-bucket/no.csv"}}
            missing = await http.post(datasets, json=absent)
            # A batch inference reads an s3:// dataset_path from the root too.
            deployed = await http.post(
                f"/api/v1/projects/{project}/experiment_runs/{run['id']}/deployments",
                json={"deployment_name": "d", "checkpoint_name": "epoch-0002"},
            )
            inferences = f"{deployed.request.url.path}/{deployed.json()['id']}/inferences"
            batch = await http.post(
                inferences, json={"dataset_path": "s3://my-bucket/path/inputs.csv"}
            )
        assert environment.backend is not None
        folder = environment.backend.files.root / "datasets"
        kept = folder / f"{created['response']['id']}.credentials.json"
        assert json.loads(kept.read_text()) == S3_CREDENTIALS
        assert kept.stat().st_mode & 0o777 == 0o600
    assert run["status"] == "completed", run.get("error")
    assert batch.status_code == 200, batch.text
    assert len(batch.json()["predictions"]) == 7
    assert escaped.status_code == 403 and "outside its bucket" in escaped.json()["detail"]
    assert missing.status_code == 404
    assert missing.json()["detail"] == "S3 object with location 's3://my-bucket/no.csv' not found"


# The differences kept on purpose ----------------------------------------------------------------


async def observed_differences(transport: Any) -> set[str]:
    """One script through the stand-ins: each kept difference it can see, by its key."""
    import os
    import warnings

    from qcog_types.pytorch_models.hyperparameters import GeneralHSModelHyperparameters as Model
    from qcogclient import ExperimentClient as StandIn
    from qcogclient.qcog.adapters import load_dataframe as adapt

    seen = set()
    data = {k: v for k, v in hyperparameters().model_dump().items() if k != "targets"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if Model(**data, target=TARGET).targets == TARGET and caught:
            seen.add("target")
    saved = os.environ.pop("QCOG_ENV", None)
    try:
        async with StandIn(api_key=KEY) as default:
            if default.http_client.base_url == "http://localhost:8001/api":
                seen.add("default-env")
    finally:
        if saved is not None:
            os.environ["QCOG_ENV"] = saved
    try:
        async with StandIn(api_key=KEY, base_url="http://127.0.0.1:9/api") as unreachable:
            await unreachable.project_client.whoami()
    except ConnectionError as error:
        if type(error).__module__.startswith("qcog_mock"):
            seen.add("connection-error")
    async with StandIn(api_key=KEY, base_url=API, transport=transport) as experiments:
        frame = synthetic_panel(dates=1, assets=60, features=4, seed=1)
        await experiments.project_client.upload_dataset(adapt(frame), "data")
        for name in ("first", "second"):
            await experiments.run_experiment(
                name, experiment_name="pytorch-models", dataset_name="data", instance="cpu",
                parameters={"hyperparameters": hyperparameters()},
            )  # fmt: skip
        await experiments.select_experiment_run(experiment_run_name="first")
        await experiments.delete_experiment_run("second")
        still = (await experiments.get_experiment_runs())["response"]
        if [run["name"] for run in still] == ["first"]:  # the real one would delete "first"
            seen.add("delete-run")
    return seen


async def test_fidelity__the_kept_differences_are_exactly_the_listed_ones(transport: Any) -> None:
    from qcog_mock.compat import KEPT_DIFFERENCES

    assert await observed_differences(transport) == set(KEPT_DIFFERENCES)
    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    for key, text in KEPT_DIFFERENCES.items():
        assert f"`{key}`: {text}" in readme, f"README's Fidelity section lacks {key!r}"


# Support ------------------------------------------------------------------------------------


async def test_support__every_answer_carries_a_fresh_trace_id(transport: Any) -> None:
    # QCOG_DEBUG=1 makes the client print it under --- SENTRY TRACE --- for support requests.
    async with raw(transport) as http:
        answers = [
            await http.get("/api/v1/whoami"),
            await http.get("/api/v1/whoami"),
            await http.get("/api/v1/whoami", headers={"Authorization": "x-api-key wrong"}),
            await http.get("/api/v1/no-such-route"),
            await http.post("/api/v1/projects/x/experiment_runs", content=b"{"),
        ]
    assert [a.status_code for a in answers] == [200, 200, 401, 404, 404]
    ids = [a.headers["x-trace-id"] for a in answers]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_support__qcog_debug_prints_the_trace_id_under_the_banner(
    transport: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QCOG_DEBUG", "1")
    async with client(transport) as experiments:
        await experiments.project_client.whoami()
    banner, trace = capsys.readouterr().out.splitlines()[-2:]
    assert banner == "--- SENTRY TRACE ---" and len(trace) == 32 and int(trace, 16) >= 0


# pytorch-models: params go to torch unchanged ------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize(
    ("overrides", "torch_says", "hint"),
    [
        (
            {"scheduler_config": {"type": "ReduceLROnPlateau", "params": {"monitor": "val_loss"}}},
            "unexpected keyword argument 'monitor'",
            "remove monitor",
        ),
        (
            {"loss_fn_config": {"type": "CrossEntropyLoss", "params": {"weight": [1.0, 2.0]}}},
            "cannot assign 'list' object to buffer 'weight'",
            "cannot be given as a JSON list",
        ),
        ({"device": "cuda"}, "Torch not compiled with CUDA enabled", "use device='cpu'"),
    ],
)
async def test_pytorch_models__what_torch_refuses_fails_at_once_without_retries(
    transport: Any, overrides: dict[str, Any], torch_says: str, hint: str
) -> None:
    async with client(transport) as experiments, raw(transport) as http:
        frame = synthetic_panel(dates=1, assets=60, features=4, seed=1)
        await experiments.project_client.upload_dataset(load_dataframe(frame), "data")
        await experiments.run_experiment(
            "job", experiment_name="pytorch-models", dataset_name="data", instance="cpu",
            parameters={"hyperparameters": hyperparameters(**overrides), "retries": 3},
        )  # fmt: skip
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        run = (await experiments.get_experiment_run("job"))["response"]
    assert run["status"] == "failed" and len(run["attempts"]) == 1  # not retried
    assert torch_says in run["error"] and hint in run["error"]
    assert "would repeat on every attempt" in run["error"]


# Inference -------------------------------------------------------------------------------------


@pytest.mark.torch
async def test_inference__columns_are_read_by_position_names_only_noted(
    transport: Any, tmp_path: Path
) -> None:
    await submitted(transport, "job")
    inputs = synthetic_panel(dates=1, assets=5, features=4, seed=2).drop(columns=[TARGET])
    async with client(transport) as experiments, raw(transport) as http:
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        await experiments.create_deployment(
            "d", run_name="job", criterion={"metric": "loss", "value": "smallest"}
        )
        renamed = await experiments.sync_inference(
            inputs.rename(columns={"feature_01": "x"}), deployment_name="d", run_name="job"
        )
        plain = await experiments.sync_inference(inputs, deployment_name="d", run_name="job")
        too_many = await experiments.sync_inference(
            inputs.assign(extra=0.0), deployment_name="d", run_name="job"
        )
    assert renamed["response"]["predictions"] == plain["response"]["predictions"]
    assert "column 2 'x' is read as 'feature_01'" in renamed["response"]["notes"][0]
    assert "has 5 columns; the model takes 4 inputs, read by position" in too_many["error"]


# Documented examples recorded in the platform contract (§10.6, §12) --------------------------


def guide_example(**overrides: Any) -> GeneralHSModelHyperparameters:
    """The training-runs guide's example (§10.6): 77 inputs and a target, General HSM with
    Hilbert dimension 4, batch 2000, Adam at 1e-3 with the input_diag group at 1e-4."""
    values: dict[str, Any] = {
        "hsm_model": "general", "epochs": 2, "batch_size": 2000, "seed": 24, "targets": TARGET,
        "device": "cpu", "input_operator_count": 77, "output_operator_count": 1,
        "hilbert_space_dims": 4, "complex": True, "split": 0.2,
        "optimizer_config": OptimizerConfig(
            type="Adam", default_params={"lr": 1e-3},
            group_params=[PerGroupOptimizerParams(
                param_name_contains=["input_diag"], params={"lr": 1e-4, "weight_decay": 0})],
        ),
        "loss_fn_config": LossFunctionConfig(type="MSELoss", params={}),
        **overrides,
    }  # fmt: skip
    return GeneralHSModelHyperparameters(**values)


async def trained(transport: Any, hyperparameters: Any, **submission: Any) -> dict[str, Any]:
    """Upload the guide-shaped data (78 columns), submit, let a simulated hour pass; the run."""
    async with client(transport) as experiments, raw(transport) as http:
        frame = synthetic_panel(dates=3, assets=100, seed=0)
        assert frame.shape[1] == 78
        await experiments.project_client.upload_dataset(load_dataframe(frame), "training-data")
        submission = {"instance": "cpu", **submission}
        started = await experiments.run_experiment(
            "example", experiment_name="pytorch-models", dataset_name="training-data",
            parameters={"hyperparameters": hyperparameters}, **submission,
        )  # fmt: skip
        assert "response" in started, started
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        return (await experiments.get_experiment_run("example"))["response"]


@pytest.mark.torch
async def test_training_runs__the_example_configuration_trains_and_reports_every_metric(
    transport: Any,
) -> None:
    run = await trained(transport, guide_example())
    assert run["status"] == "completed", run.get("error")
    # train()'s full metric set (§11.7), histories included though the docs' list omits them.
    metrics = run["metrics"]
    for key in (
        "test_loss", "train_loss_history", "val_loss_history", "final_train_loss",
        "final_val_loss", "epochs_completed", "best_val_loss", "train_dataset_size",
        "val_dataset_size", "total_training_time", "avg_epoch_time", "checkpoint_metrics",
    ):  # fmt: skip
        assert key in metrics, key
    assert metrics["checkpoint_metrics"] == ["loss"] and len(metrics["val_loss_history"]) == 2
    assert metrics["train_dataset_size"] + metrics["val_dataset_size"] == 300


@pytest.mark.torch
async def test_pytorch_models__the_reverse_grouping_example_trains(transport: Any) -> None:
    optimizer = OptimizerConfig(
        type="Adam",
        default_params={"lr": 1e-3},
        group_params=[
            PerGroupOptimizerParams(param_name_contains=["input_trius"], params={"lr": 1e-4}),
            PerGroupOptimizerParams(param_name_contains=["input_diags"], params={"lr": 1e-2}),
        ],
    )
    run = await trained(transport, guide_example(optimizer_config=optimizer))
    assert run["status"] == "completed", run.get("error")


@pytest.mark.torch
async def test_training_runs__the_gradient_clipping_example_trains(transport: Any) -> None:
    clipping = GradientClippingConfig(max_norm=1.0)
    run = await trained(transport, guide_example(gradient_clipping_config=clipping))
    assert run["status"] == "completed", run.get("error")
    assert run["params"]["hyperparameters"]["gradient_clipping_config"]["max_norm"] == 1.0


@pytest.mark.torch
@pytest.mark.parametrize(
    "submission", [{"environment_name": "py3.12-cuda"}, {"instance": "cpu"}], ids=["env", "cpu"]
)
async def test_training_runs__environment_name_and_instance_both_submit(
    transport: Any, submission: dict[str, Any]
) -> None:
    run = await trained(transport, guide_example(epochs=1), **{"instance": None, **submission})
    assert run["status"] == "completed", run.get("error")
    async with raw(transport) as http:
        environment = (await http.get(f"/api/v1/environments/{run['environment_id']}")).json()
    assert environment["name"] == submission.get("environment_name", "python3.12")


@pytest.mark.torch
@pytest.mark.parametrize(
    ("device", "submission", "gpu"),
    [
        ("cuda", {"environment_name": "py3.12-cuda"}, "the GPU of 'py3.12-cuda'"),
        ("auto", {"environment_name": "py3.12-cuda"}, "the GPU of 'py3.12-cuda'"),
        ("cuda", {"instance": "gpu", "gpu_type": "T4"}, "the T4"),
    ],
    ids=["cuda-on-gpu-env", "auto-on-gpu-env", "cuda-with-gpu-type"],
)
async def test_training_runs__a_gpu_run_trains_on_the_cpu_and_says_so(
    transport: Any, device: str, submission: dict[str, Any], gpu: str
) -> None:
    # The training-runs and pytorch-models pages submit device="cuda" on GPU instances.
    resources = {k: v for k, v in submission.items() if k == "gpu_type"}
    async with client(transport) as experiments, raw(transport) as http:
        await experiments.project_client.upload_dataset(
            load_dataframe(synthetic_panel(dates=1, assets=60, features=4, seed=1)), "data"
        )
        await experiments.run_experiment(
            "job", experiment_name="pytorch-models", dataset_name="data",
            parameters={"hyperparameters": hyperparameters(device=device), **resources},
            **{k: v for k, v in submission.items() if k != "gpu_type"},
        )  # fmt: skip
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        run = (await experiments.get_experiment_run("job"))["response"]
        events = (await http.get("/_emulator/events", params={"run_id": run["id"]})).json()
    assert run["status"] == "completed", run.get("error")
    note = f"trained on CPU: the emulator has no GPU; the platform would use {gpu}"
    assert run["notes"] == [note]
    (started,) = [e for e in events if e["type"] == "attempt.started"]
    assert started["notes"] == [note]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("device", "submission"),
    [("cuda", {"instance": "cpu"}), ("mps", {"environment_name": "py3.12-cuda"})],
    ids=["cuda-on-cpu", "mps-on-gpu-env"],
)
async def test_pytorch_models__a_device_the_instance_lacks_still_fails(
    transport: Any, device: str, submission: dict[str, Any]
) -> None:
    async with client(transport) as experiments, raw(transport) as http:
        await experiments.project_client.upload_dataset(
            load_dataframe(synthetic_panel(dates=1, assets=60, features=4, seed=1)), "data"
        )
        await experiments.run_experiment(
            "job", experiment_name="pytorch-models", dataset_name="data",
            parameters={"hyperparameters": hyperparameters(device=device)}, **submission,
        )  # fmt: skip
        await http.post("/_emulator/clock/advance", json={"seconds": 3600})
        run = (await experiments.get_experiment_run("job"))["response"]
    assert run["status"] == "failed" and f"device: '{device}' is not available" in run["error"]
    assert run["notes"] is None


async def test_dataset_management__the_documented_chunk_size_is_accepted(transport: Any) -> None:
    frame = synthetic_panel(dates=1, assets=20, seed=3)
    async with client(transport) as experiments:
        # The docs' value: MB multiplied by 1 MiB again by the client (§12 #5): advisory only.
        uploaded = await experiments.project_client.upload_dataset(
            load_dataframe(frame), "chunked", chunk_size=1024 * 1024 * 128
        )
    assert uploaded["response"]["number_of_rows"] == 20


@pytest.mark.torch
async def test_model_deployment__the_docs_largest_criterion_means_greatest(
    transport: Any,
) -> None:
    run = await trained(transport, guide_example(epochs=3))
    async with client(transport) as experiments, raw(transport) as http:
        chosen = {}
        for value in ("largest", "greatest", "smallest"):
            deployed = await experiments.create_deployment(
                f"by-{value}", run_name="example", criterion={"metric": "loss", "value": value}
            )
            chosen[value] = deployed["response"]["checkpoint_name"]
        checkpoints = (
            await http.get(f"/api/v1/projects/{run['project_id']}/experiment_runs/{run['id']}"
                           "/checkpoints")
        ).json()  # fmt: skip
    losses = {c["name"]: c["metrics"]["loss"] for c in checkpoints}
    assert chosen["largest"] == chosen["greatest"] == max(losses, key=losses.__getitem__)
    assert chosen["smallest"] == min(losses, key=losses.__getitem__)
