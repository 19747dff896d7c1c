"""Every route and every bad input, through HTTP against the real app."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mockserver.helpers import KEY, Platform, dataset_csv, emulator, hyperparameters

HOUR = 3600


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# Authentication and envelope ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/whoami", "GET, HEAD"),
        ("DELETE", "/api/v1/environments", "GET, HEAD, POST"),
        ("POST", "/api/v1/environments/env-1", "DELETE, GET, HEAD"),
        ("PATCH", "/_emulator/faults", "DELETE, GET, HEAD, PUT"),
        ("DELETE", "/_emulator/clock", "GET, HEAD, PUT"),
    ],
)
async def test_a_405_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    expected = " or ".join(allowed.split(", "))
    assert response.json()["detail"] == f"Method {method} not allowed here; use {expected}."


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "x-api-key wrong"},
        {"Authorization": "Bearer " + KEY},
        {"Authorization": "x-api-key"},
    ],
)
async def test_every_route_needs_a_valid_key(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    anonymous = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    for method, path in [
        ("GET", "/api/v1/whoami"),
        ("GET", "/api/v1/environments"),
        ("GET", "/api/v1/experiments/pytorch-models?identifier=name"),
        ("GET", "/api/v1/projects/x/datasets"),
        ("POST", "/api/v1/projects/x/experiment_runs"),
    ]:
        response = await anonymous.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert "x-api-key" in response.json()["detail"]


async def test_basic_auth_reaches_the_admin_user(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/admin_user", headers=basic("admin", "admin"))
    assert response.status_code == 200 and response.json()["system_role"] == "admin"
    wrong = await client.get("/api/v1/users/admin_user", headers=basic("admin", "nope"))
    assert wrong.status_code == 401


async def test_whoami_and_the_simulated_time_header(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/whoami")
    body = response.json()
    assert body["project_name"] == "qcog-mock" and body["project_id"]
    assert {"user_id", "user_name", "system_permissions", "project_permissions", "datasets"} <= set(
        body
    )
    assert response.headers["X-Qcog-Mock-Time"] == "2026-01-01T00:00:00Z"


async def test_unknown_routes_are_json_not_found_without_slash_redirects(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/whoami/")
    assert response.status_code == 404 and "not found" in response.json()["detail"]


# Catalogue ------------------------------------------------------------------------------


async def test_environments_by_instance_id_and_name(client: httpx.AsyncClient) -> None:
    every = (await client.get("/api/v1/environments")).json()
    assert [e["name"] for e in every] == ["python3.12", "py3.12-cuda"]
    for instance, name in (("cpu", "python3.12"), ("gpu", "py3.12-cuda")):
        listed = (await client.get("/api/v1/environments", params={"instance": instance})).json()
        assert [e["name"] for e in listed] == [name]
    assert (
        len((await client.get("/api/v1/environments?instance=None&limit=100&offset=0")).json()) == 2
    )
    by_name = (await client.get("/api/v1/environments/py3.12-cuda?identifier=name")).json()
    by_id = (await client.get(f"/api/v1/environments/{by_name['id']}")).json()
    assert by_id == by_name and by_id["instance"] == "gpu"
    missing = await client.get("/api/v1/environments/nope?identifier=name")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    bad = await client.get("/api/v1/environments", params={"instance": "tpu"})
    assert bad.status_code == 422 and "instance" in bad.json()["detail"]


async def test_environment_create_and_delete(client: httpx.AsyncClient) -> None:
    body = {
        "name": "custom",
        "configuration": {"provider": "modal", "docker_image": "img", "tag": "1"},
    }
    created = await client.post("/api/v1/environments", json=body)
    assert created.status_code == 201 and created.json()["instance"] == "cpu"
    assert (await client.post("/api/v1/environments", json=body)).status_code == 409
    deleted = await client.delete("/api/v1/environments/custom?identifier=name")
    assert deleted.json() == {"deleted": True, "id": created.json()["id"], "name": "custom"}


async def test_experiments_list_get_and_create(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/v1/experiments")).json()
    assert [e["name"] for e in listed] == ["pytorch-models"]
    got = (await client.get("/api/v1/experiments/pytorch-models?identifier=name")).json()
    assert (await client.get(f"/api/v1/experiments/{got['id']}")).json()["name"] == "pytorch-models"
    created = await client.post("/api/v1/experiments", json={"name": "other", "file_path": "x.zip"})
    assert created.status_code == 201
    missing = await client.get("/api/v1/experiments/nope?identifier=name")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"].lower()
    bad = await client.get("/api/v1/experiments/x?identifier=email")
    assert bad.status_code == 422 and "identifier" in bad.json()["detail"]


# Admin ----------------------------------------------------------------------------------


async def test_admin_flow_users_projects_keys_and_isolation(platform: Platform) -> None:
    client = platform.client
    missing = await client.get("/api/v1/users", params={"email": "ada@example.com"})
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    user = await client.post(
        "/api/v1/users", json={"email": "ada@example.com", "name": "Ada", "system_role": "user"}
    )
    assert user.status_code == 201
    user_id = user.json()["id"]
    assert (await client.get("/api/v1/users?email=ada@example.com")).json()["id"] == user_id
    assert (await client.get("/api/v1/projects?project_name=lab")).status_code == 404
    project = await client.post(
        "/api/v1/projects",
        json={
            "name": "lab",
            "description": "d",
            "user_associated": [{"user_id": user_id, "project_role": "owner"}],
        },
    )
    assert project.status_code == 201
    project_id = project.json()["id"]
    assert (await client.get("/api/v1/projects?project_name=lab")).json()["id"] == project_id
    assert len((await client.get("/api/v1/projects?limit=100&offset=0")).json()) == 2
    key = await client.post("/api/v1/api_keys", json={"user_id": user_id, "project_id": project_id})
    assert key.status_code == 201
    x_api_key = key.json()["x_api_key"]

    theirs = {"Authorization": f"x-api-key {x_api_key}"}
    who = (await client.get("/api/v1/whoami", headers=theirs)).json()
    assert who["project_id"] == project_id and who["user_name"] == "Ada"
    # Their key does not open the seed project, and cannot administer.
    blocked = await client.get(f"{platform.project}/datasets", headers=theirs)
    assert blocked.status_code == 403 and "no access" in blocked.json()["detail"]
    assert (
        await client.post("/api/v1/users", headers=theirs, json={"email": "e", "name": "n"})
    ).status_code == 403

    link = await client.post(
        "/api/v1/user_projects",
        json={"user_id": user_id, "project_id": platform.project_id, "role": "viewer"},
    )
    assert link.status_code == 201 and link.json()["role"] == "viewer"
    gpus = await client.put(f"/api/v1/projects/{project_id}", json={"allowed_gpus": ["T4", "L4"]})
    assert gpus.json()["allowed_gpus"] == ["T4", "L4"]
    unchanged = await client.put(f"/api/v1/projects/{project_id}", json={"allowed_gpus": None})
    assert unchanged.status_code == 200 and unchanged.json()["allowed_gpus"] == ["T4", "L4"]
    bad_gpu = await client.put(f"/api/v1/projects/{project_id}", json={"allowed_gpus": ["Z9"]})
    assert bad_gpu.status_code == 422 and "Z9" in bad_gpu.json()["detail"]


# Datasets -------------------------------------------------------------------------------


async def test_upload_list_and_get_datasets(platform: Platform) -> None:
    response = await platform.upload("training-dat  ", description="the guide's name")
    assert response.status_code == 201
    dataset = response.json()
    assert dataset["name"] == "training-dat  "  # kept exactly, trailing spaces included
    assert (dataset["number_of_rows"], dataset["number_of_columns"]) == (60, 5)
    by_name = await platform.client.get(
        f"{platform.project}/datasets/training-dat  ", params={"identifier": "name"}
    )
    assert by_name.json()["id"] == dataset["id"]
    by_id = await platform.client.get(f"{platform.project}/datasets/{dataset['id']}")
    assert by_id.json()["name"] == "training-dat  "
    await platform.upload("second")
    listed = await platform.client.request(
        "GET", f"{platform.project}/datasets", json={"limit": 1, "skip": 1}
    )
    assert [d["name"] for d in listed.json()] == ["second"]
    queried = await platform.client.get(f"{platform.project}/datasets?limit=5&skip=0")
    assert [d["name"] for d in queried.json()] == ["training-dat  ", "second"]
    who = (await platform.client.get("/api/v1/whoami")).json()
    assert [d["name"] for d in who["datasets"]] == ["training-dat  ", "second"]


async def test_duplicate_dataset_names_need_override(platform: Platform) -> None:
    first = (await platform.upload("data")).json()
    duplicate = await platform.upload("data")
    assert duplicate.status_code == 409 and "override=True" in duplicate.json()["detail"]
    replaced = await platform.upload("data", dataset_csv(rows=30), override="True")
    assert replaced.status_code == 201 and replaced.json()["number_of_rows"] == 30
    assert replaced.json()["id"] != first["id"]
    listed = (await platform.client.get(f"{platform.project}/datasets")).json()
    assert [d["id"] for d in listed] == [replaced.json()["id"]]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b",a,b\n0,1,2\n", "have no name"),
        (b"a,a\n1,2\n", "duplicate column names"),
    ],
)
async def test_bad_csv_uploads_are_rejected_and_nothing_is_stored(
    platform: Platform, content: bytes, fragment: str
) -> None:
    response = await platform.upload("bad", content)
    assert response.status_code == 422 and fragment in response.json()["detail"]
    assert (await platform.client.get(f"{platform.project}/datasets")).json() == []


async def test_non_csv_format_is_rejected(platform: Platform) -> None:
    response = await platform.upload("x", format="parquet")
    assert response.status_code == 422 and "format" in response.json()["detail"]


@pytest.mark.parametrize("settings_overrides", [{"max_upload_bytes": 100}])
async def test_uploads_over_the_cap_are_refused(platform: Platform) -> None:
    response = await platform.upload("big", dataset_csv())
    assert response.status_code == 413 and "upload limit" in response.json()["detail"]


async def test_datasets_from_a_local_path_or_file_url_and_not_s3(tmp_path: Path) -> None:
    path = tmp_path / "local.csv"
    path.write_bytes(dataset_csv(rows=25))
    async with emulator(dataset_roots=(tmp_path,)) as platform:  # the operator allows tmp_path
        for name, location in (("by-path", str(path)), ("by-url", f"file://{path}")):
            configuration = {
                "dataset_location": location,
                "dataset_format": "csv",
                "conf_name": "modal",
                "conf_version": "0.0.1",
                "credentials": {"AWS_ACCESS_KEY_ID": "k"},
            }
            body = {"name": name, "configuration": configuration}
            created = await platform.client.post(f"{platform.project}/datasets", json=body)
            assert created.status_code == 201 and created.json()["number_of_rows"] == 25
            assert "credentials" not in created.json()["configuration"]
        s3 = {"name": "s3", "configuration": {"dataset_location": "s3://b/data.csv"}}
        refused = await platform.client.post(f"{platform.project}/datasets", json=s3)
        assert refused.status_code == 422
        detail = refused.json()["detail"]
        assert detail.startswith("configuration.dataset_location: 's3://b/data.csv' is not an S3")
        missing = {"name": "m", "configuration": {"dataset_location": str(tmp_path / "none.csv")}}
        absent = await platform.client.post(f"{platform.project}/datasets", json=missing)
        assert absent.status_code == 404 and "not found" in absent.json()["detail"]


# Runs -----------------------------------------------------------------------------------


async def test_run_create_get_list_and_filters(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    first = await platform.submit(dataset, "one", timeout=HOUR, retries=3)
    second = await platform.submit(dataset, "two")
    assert first["status"] == "pending" and first["max_attempts"] == 4
    assert first["runtime_limit_seconds"] == 4 * HOUR and first["attempts"] == []
    assert "detail" not in first
    by_name = await platform.client.get(f"{platform.project}/experiment_runs/one?identifier=name")
    assert by_name.json()["id"] == first["id"]
    runs = f"{platform.project}/experiment_runs"
    listed = (
        await platform.client.get(runs, params={"experiment_id": "None", "descending": "true"})
    ).json()
    assert [r["name"] for r in listed] == ["two", "one"]
    ascending = (
        await platform.client.get(runs, params={"descending": "False", "limit": 1, "skip": 1})
    ).json()
    assert [r["name"] for r in ascending] == ["two"]
    by_experiment = (
        await platform.client.get(runs, params={"experiment_id": "pytorch-models"})
    ).json()
    assert len(by_experiment) == 2
    other = await platform.client.get(runs, params={"experiment_id": "nope"})
    assert other.status_code == 404
    # Stored as validated, in the current types' spelling (`targets`).
    assert second["params"]["hyperparameters"]["targets"] == hyperparameters()["targets"]


def invalid(**params: Any) -> dict[str, Any]:
    return params


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        (invalid(timeout=0), ["params.timeout", "1 to 86400"]),
        (invalid(timeout=86_401), ["params.timeout", "Use retries"]),
        (invalid(timeout=3600.5), ["params.timeout", "integer"]),
        (invalid(timeout="3600"), ["params.timeout", "integer"]),
        (invalid(timeout=True), ["params.timeout", "integer"]),
        (invalid(retries=-1), ["params.retries", "0 to 10"]),
        (invalid(retries=11), ["params.retries", "0 to 10"]),
        (invalid(cpu_count=0), ["params.cpu_count", "at least 1"]),
        (invalid(memory=0), ["params.memory", "greater than 0"]),
        (invalid(gpu_type="H200"), ["params.gpu_type", "not a known GPU type"]),
        (invalid(emulator={"epoch_seconds": -1}), ["params.emulator.epoch_seconds"]),
        (invalid(emulator={"faults": [{"type": "melt"}]}), ["params.emulator.faults"]),
        (invalid(hyperparameters={}), ["params.hyperparameters", "required"]),
        (
            invalid(hyperparameters=hyperparameters(hilbert_space_dims=0)),
            ["params.hyperparameters", "Hilbert space dimension must be greater than 0."],
        ),
        (
            invalid(hyperparameters=hyperparameters(hsm_model="ensemble")),
            ["params.hyperparameters.hsm_model", "Available types"],
        ),
        (
            invalid(hyperparameters=hyperparameters(loss_fn_config={"type": "os.system"})),
            ["params.hyperparameters.loss_fn_config.type", "Unknown loss function"],
        ),
        (
            invalid(hyperparameters=hyperparameters(optimizer_config={"type": "Adamm"})),
            [
                "params.hyperparameters.optimizer_config.type: Unknown optimizer 'Adamm'. "
                "Did you mean 'Adam'? optimizer_config.type must name an optimizer class"
            ],
        ),
        (
            invalid(hyperparameters=hyperparameters(optimizer_config={"type": "adam"})),
            ["Did you mean 'Adam'?"],
        ),
        (
            invalid(hyperparameters=hyperparameters(loss_fn_config={"type": "MSE"})),
            ["Did you mean 'MSELoss'?"],
        ),
    ],
)
async def test_bad_run_params_are_422_naming_the_field(
    platform: Platform, params: dict[str, Any], fragments: list[str]
) -> None:
    dataset = await platform.dataset_id()
    body = platform.run_body(dataset)
    body["params"].update(params)
    response = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail
    assert "Value error," not in detail  # pydantic's prefix, not the platform's words
    assert (await platform.client.get(f"{platform.project}/experiment_runs")).json() == []


async def test_whole_number_floats_are_accepted(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, timeout=3600.0, retries=2.0)
    assert (run["timeout"], run["max_attempts"]) == (3600, 3)


async def test_gpu_types_must_be_allowed_for_the_project(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    await platform.client.put(
        f"/api/v1/projects/{platform.project_id}", json={"allowed_gpus": ["T4"]}
    )
    body = platform.run_body(dataset, gpu_type="A10G")
    response = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert (
        response.status_code == 422 and "not allowed for this project" in response.json()["detail"]
    )
    assert (await platform.submit(dataset, gpu_type="T4"))["params"]["gpu_type"] == "T4"


@pytest.mark.parametrize(
    ("field", "value"), [("experiment_id", "x"), ("environment_id", "x"), ("dataset_id", "x")]
)
async def test_unknown_references_are_not_found(platform: Platform, field: str, value: str) -> None:
    body = platform.run_body(await platform.dataset_id())
    body[field] = value
    response = await platform.client.post(f"{platform.project}/experiment_runs", json=body)
    assert response.status_code == 404 and "not found" in response.json()["detail"]


async def test_malformed_bodies_are_422_strings(platform: Platform) -> None:
    response = await platform.client.post(f"{platform.project}/experiment_runs", json={"name": "x"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "experiment_id" in detail and "params" in detail


@pytest.mark.torch
async def test_checkpoints_list_and_get_by_name(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    run = await platform.submit(dataset, emulator={"epoch_seconds": 60})
    await platform.advance(HOUR)
    base = f"{platform.project}/experiment_runs/{run['id']}/checkpoints"
    listed = (await platform.client.get(base)).json()
    assert [c["name"] for c in listed] == [f"epoch-{i:04d}" for i in range(1, 7)]
    assert set(listed[0]) >= {"name", "epoch", "attempt", "path", "metrics", "created_at"}
    assert listed[0]["created_at"] == "2026-01-01T00:01:05Z"
    got = await platform.client.get(f"{base}/epoch-0003", params={"identifier": "name"})
    assert got.json()["epoch"] == 3 and "loss" in got.json()["metrics"]
    missing = await platform.client.get(f"{base}/epoch-0099", params={"identifier": "name"})
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]


# Control plane and documents ------------------------------------------------------------


async def test_clock_read_advance_to_and_mode(platform: Platform) -> None:
    client = platform.client
    assert (await client.get("/_emulator/clock")).json()["mode"] == "manual"
    moved = await client.post("/_emulator/clock/advance", json={"to": "2026-01-02T00:00:00Z"})
    assert moved.json()["now"] == "2026-01-02T00:00:00Z"
    back = await client.post("/_emulator/clock/advance", json={"to": "2026-01-01T00:00:00Z"})
    assert back.status_code == 422 and "cannot go back" in back.json()["detail"]
    both = await client.post(
        "/_emulator/clock/advance", json={"seconds": 1, "to": "2027-01-01T00:00:00Z"}
    )
    assert both.status_code == 422
    for absurd in ('{"seconds": 1e30}', '{"to": "9999-12-31T23:59:59Z"}', '{"seconds": NaN}'):
        refused = await client.post(
            "/_emulator/clock/advance", content=absurd, headers={"content-type": "application/json"}
        )
        assert refused.status_code == 422, absurd
    assert (await client.get("/_emulator/clock")).json()["now"] == "2026-01-02T00:00:00Z"
    mode = await client.put("/_emulator/clock", json={"mode": "realtime", "speed": 10})
    assert mode.json()["mode"] == "realtime" and mode.json()["speed"] == 10
    refused = await client.post("/_emulator/clock/advance", json={"seconds": 5})
    assert refused.status_code == 409
    bad = await client.put("/_emulator/clock", json={"mode": "warp"})
    assert bad.status_code == 422
    too_fast = await client.put("/_emulator/clock", json={"mode": "realtime", "speed": 1e300})
    assert too_fast.status_code == 422
    assert (await client.get("/api/v1/whoami")).status_code == 200  # the clock still renders


async def test_reset_returns_to_the_seed_state(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    await platform.submit(dataset)
    await platform.advance(HOUR)
    assert (await platform.client.post("/_emulator/reset")).json()["reset"] is True
    await platform.setup()
    assert (await platform.client.get(f"{platform.project}/datasets")).json() == []
    assert (await platform.client.get("/_emulator/clock")).json()["now"] == "2026-01-01T00:00:00Z"
    assert await platform.events() == []


async def test_openapi_describes_every_route_and_docs_are_served(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for path in (
        "/api/v1/whoami", "/api/v1/environments", "/api/v1/environments/{value}",
        "/api/v1/experiments", "/api/v1/experiments/{value}", "/api/v1/users",
        "/api/v1/users/admin_user", "/api/v1/projects", "/api/v1/projects/{pid}",
        "/api/v1/api_keys", "/api/v1/user_projects", "/api/v1/projects/{pid}/datasets",
        "/api/v1/projects/{pid}/datasets/upload", "/api/v1/projects/{pid}/datasets/{value}",
        "/api/v1/projects/{pid}/experiment_runs", "/api/v1/projects/{pid}/experiment_runs/{value}",
        "/api/v1/projects/{pid}/experiment_runs/{rid}/checkpoints",
        "/api/v1/projects/{pid}/experiment_runs/{rid}/checkpoints/{name}",
        "/_emulator/clock", "/_emulator/clock/advance", "/_emulator/clock/settle",
        "/_emulator/reset", "/_emulator/events",
    ):  # fmt: skip
        assert path in paths, path
    assert {"emulator"} == {t for op in paths["/_emulator/clock"].values() for t in op["tags"]}
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from qcog_mock.mockserver.settings import Settings

    monkeypatch.setenv("QCOG_API_KEY", "my-platform-key")
    assert Settings.from_environment().api_key == "my-platform-key"
    monkeypatch.delenv("QCOG_API_KEY")
    assert Settings.from_environment().api_key == "qcog-mock-api-key"
