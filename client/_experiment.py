"""``ExperimentClient``: runs, checkpoints, deployments and inferences of the key's project.

Selection rule, as in the real client: a name argument is resolved first; otherwise the resource
selected by an earlier call is used; otherwise the call returns a "no … selected" error.

Longer than the project's other modules because it is one class: the real ``ExperimentClient``'s
twenty-odd methods, kept together so that each can be compared with its original.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Literal, TypedDict
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from qcog_mock.client._admin import AdminClient
from qcog_mock.client._base import Failed, Initializer, check, enveloped, is_error
from qcog_mock.client._http import DictResponse, HttpClient
from qcog_mock.client._project import STR_NOT_SUPPORTED, ProjectClient, ProjectError

NO_RESOURCE_SELECTED = (
    "No {resource_name} selected. Select one with {select_method} or pass {arg_name}."
)
RESOURCE_GETTER_ERROR = "Error fetching {resource}: {error}"
NOT_COMPLETED = (
    "Experiment run is not completed yet. You might be deploying an incomplete checkpoint."
)


class Criterion(TypedDict, total=False):
    metric: str
    operator: Literal["gt", "gte", "lt", "lte", "eq", "neq"] | None
    value: Any


class ExperimentRunParameters(TypedDict, total=False):
    hyperparameters: dict[str, Any] | BaseModel
    cpu_count: int
    gpu_type: str
    memory: int
    timeout: int
    retries: int
    disk_size: int


def _csv_text(dataset: Any) -> str:
    if hasattr(dataset, "to_csv"):
        return dataset.to_csv(index=False)
    if isinstance(dataset, str):
        raise NotImplementedError(STR_NOT_SUPPORTED)
    if isinstance(dataset, Path):
        path = Path(dataset)
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        return path.read_text()
    if isinstance(dataset, bytes):
        return dataset.decode()
    if isinstance(dataset, io.IOBase) or hasattr(dataset, "read"):
        content = dataset.read()
        return content.decode() if isinstance(content, bytes) else str(content)
    raise TypeError(
        f"Cannot send a {type(dataset).__name__}: give a DataFrame, a path or a file object."
    )


class ExperimentClient(Initializer):
    def __init__(
        self,
        http_client: HttpClient | None = None,
        admin_client: AdminClient | None = None,
        project_client: ProjectClient | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        basic_auth_username: str | None = None,
        basic_auth_password: str | None = None,
        timeout: float = 3000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            http_client=http_client,
            base_url=base_url,
            api_key=api_key,
            basic_auth_username=basic_auth_username,
            basic_auth_password=basic_auth_password,
            timeout=timeout,
            transport=transport,
        )
        self.admin_client = admin_client or AdminClient(http_client=self.http_client)
        self.project_client = project_client or ProjectClient(http_client=self.http_client)
        self._experiment_id: str | None = None
        self._environment_id: str | None = None
        self._dataset_id: str | None = None
        self._experiment_run_id: str | None = None
        self._checkpoint_name: str | None = None
        self._deployment_id: str | None = None

    async def _runs_path(self) -> str:
        try:
            return f"/projects/{await self.project_client.project_id()}/experiment_runs"
        except ProjectError as error:
            raise Failed({"error": str(error)}) from None

    # Selection ------------------------------------------------------------------------------

    async def select_experiment(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> DictResponse:
        if not experiment_id and not experiment_name:
            return {"error": "No experiment ID or name provided."}
        value, identifier = (experiment_name, "name") if experiment_name else (experiment_id, "id")
        result = await self.admin_client.get_experiment(str(value), identifier)  # type: ignore[arg-type]
        if is_error(result):
            return {
                "error": RESOURCE_GETTER_ERROR.format(resource="experiment", error=result["error"])
            }
        self._experiment_id = result["response"]["id"]
        return result

    async def select_environment(
        self,
        environment_id: str | None = None,
        environment_name: str | None = None,
        instance: Literal["cpu", "gpu"] | None = None,
    ) -> DictResponse:
        if instance is not None:
            listed = await self.admin_client.list_environments(
                limit=100, offset=0, instance=instance
            )
            if is_error(listed):
                return {
                    "error": RESOURCE_GETTER_ERROR.format(
                        resource="environment", error=listed["error"]
                    )
                }
            if not listed["response"]:
                return {"error": f"No environment found for instance: {instance}"}
            self._environment_id = listed["response"][0]["id"]
            return {"response": listed["response"][0]}
        if not environment_id and not environment_name:
            return {"error": "No environment ID, name or instance provided."}
        value, identifier = (
            (environment_name, "name") if environment_name else (environment_id, "id")
        )
        result = await self.admin_client.get_environment(str(value), identifier)  # type: ignore[arg-type]
        if is_error(result):
            return {
                "error": RESOURCE_GETTER_ERROR.format(resource="environment", error=result["error"])
            }
        self._environment_id = result["response"]["id"]
        return result

    async def select_dataset(
        self, dataset_id: str | None = None, dataset_name: str | None = None
    ) -> DictResponse:
        if not dataset_id and not dataset_name:
            return {"error": "No dataset ID or name provided."}
        value, identifier = (dataset_name, "name") if dataset_name else (dataset_id, "id")
        result = await self.project_client.get_dataset(dataset_id=str(value), identifier=identifier)  # type: ignore[arg-type]
        if is_error(result):
            return {
                "error": RESOURCE_GETTER_ERROR.format(resource="dataset", error=result["error"])
            }
        self._dataset_id = result["response"]["id"]
        return result

    @enveloped
    async def select_experiment_run(
        self, experiment_run_id: str | None = None, experiment_run_name: str | None = None
    ) -> DictResponse:
        runs = await self._runs_path()
        if not experiment_run_id and not experiment_run_name:
            return {"error": "No experiment run ID or name provided."}
        value, identifier = (
            (experiment_run_name, "name") if experiment_run_name else (experiment_run_id, "id")
        )
        result = await self.http_client.exec(
            f"{runs}/{quote(str(value), safe='')}", "GET", params={"identifier": identifier}
        )
        if not is_error(result):
            self._experiment_run_id = result["response"]["id"]
        return result

    async def _run_path(self, run_name: str | None) -> str:
        """The API path of the named run (or of the selected one)."""
        return f"{await self._runs_path()}/{await self._run_id(run_name)}"

    async def _run_id(self, run_name: str | None) -> str:
        if run_name:
            check(await self.select_experiment_run(experiment_run_name=run_name))
        if self._experiment_run_id is None:
            raise Failed(
                {
                    "error": NO_RESOURCE_SELECTED.format(
                        resource_name="experiment run",
                        select_method="select_experiment_run",
                        arg_name="run_name",
                    )
                }
            )
        return self._experiment_run_id

    # Runs -----------------------------------------------------------------------------------

    @enveloped
    async def run_experiment(
        self,
        name: str,
        description: str | None = None,
        *,
        experiment_name: str | None = None,
        experiment_id: str | None = None,
        environment_name: str | None = None,
        environment_id: str | None = None,
        instance: Literal["cpu", "gpu"] | None = None,
        dataset_name: str | None = None,
        dataset_id: str | None = None,
        parameters: ExperimentRunParameters | dict[str, Any],
        override: bool | None = None,
        local_webhook_url: str | None = None,
    ) -> DictResponse:
        runs = await self._runs_path()
        check(await self.select_experiment(experiment_id, experiment_name))
        check(await self.select_environment(environment_id, environment_name, instance))
        check(await self.select_dataset(dataset_id, dataset_name))
        params = dict(parameters)
        hyperparameters = params.get("hyperparameters")
        if isinstance(hyperparameters, BaseModel):
            params["hyperparameters"] = hyperparameters.model_dump()
        body = {
            "experiment_id": self._experiment_id,
            "environment_id": self._environment_id,
            "dataset_id": self._dataset_id,
            "params": params,
            "metadata": {"provider": "modal"},
            "name": name,
            "description": description,
            "override": override,
        }
        result = await self.http_client.exec(
            runs, "POST", body, params={"local_webhook_url": local_webhook_url}
        )
        if is_error(result):
            return result
        run = result["response"]
        self._experiment_run_id = run["id"]
        # Exactly the real client's answer: the docs read a `run_id` it has never returned.
        return {"response": {"status": "Experiment Started", "experiment_run": run}}

    @enveloped
    async def get_experiment_run(self, run_name: str | None = None) -> DictResponse:
        path = await self._run_path(run_name)
        return await self.http_client.exec(path, "GET")

    @enveloped
    async def get_experiment_runs(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        limit: int = 100,
        skip: int = 0,
        descending: bool = True,
    ) -> DictResponse:
        runs = await self._runs_path()
        if experiment_name:
            experiment_id = check(await self.select_experiment(experiment_name=experiment_name))[
                "id"
            ]
        params = {
            "identifier": "id",
            "experiment_id": experiment_id,
            "limit": limit,
            "skip": skip,
            "descending": str(descending).lower(),
        }
        return await self.http_client.exec(runs, "GET", params=params)

    @enveloped
    async def delete_experiment_run(self, run_name: str | None = None) -> DictResponse:
        # The real client deletes the selected run even when given a name; this one resolves it.
        path = await self._run_path(run_name)
        result = await self.http_client.exec(path, "DELETE")
        if not is_error(result):
            self._experiment_run_id = None
        return result

    # Checkpoints ----------------------------------------------------------------------------

    @enveloped
    async def list_experiment_run_checkpoints(self, run_name: str | None = None) -> DictResponse:
        path = await self._run_path(run_name)
        return await self.http_client.exec(f"{path}/checkpoints", "GET")

    @enveloped
    async def select_experiment_run_checkpoint(
        self, *, run_name: str | None = None, checkpoint_name: str
    ) -> DictResponse:
        path = await self._run_path(run_name)
        result = await self.http_client.exec(
            f"{path}/checkpoints/{quote(checkpoint_name, safe='')}",
            "GET",
            params={"identifier": "name"},
        )
        if not is_error(result):
            self._checkpoint_name = result["response"]["name"]
        return result

    # Deployments and inferences ---------------------------------------------------------------

    @enveloped
    async def deploy_checkpoint(
        self,
        deployment_name: str,
        version: str | None = None,
        release_notes: str | None = None,
        *,
        run_name: str | None = None,
        checkpoint_name: str | None = None,
    ) -> DictResponse:
        try:
            path = await self._run_path(run_name)
        except Failed:
            # The real client reads the run's ["response"] without checking for an error.
            raise KeyError("response") from None
        run = check(await self.http_client.exec(path, "GET"))
        if run.get("status") != "completed":
            return {"warning": NOT_COMPLETED}
        checkpoint = checkpoint_name or self._checkpoint_name
        if checkpoint is None:
            return {
                "error": NO_RESOURCE_SELECTED.format(
                    resource_name="checkpoint",
                    select_method="select_experiment_run_checkpoint",
                    arg_name="checkpoint_name",
                )
            }
        body = {
            "checkpoint_name": checkpoint,
            "deployment_name": deployment_name,
            "release_notes": release_notes,
            "version": version,
        }
        return await self._remember_deployment(
            await self.http_client.exec(f"{path}/checkpoints/deploy", "POST", body)
        )

    @enveloped
    async def create_deployment(
        self,
        deployment_name: str,
        version: str | None = None,
        release_notes: str | None = None,
        *,
        run_name: str | None = None,
        criterion: Criterion | None = None,
        checkpoint_name: str | None = None,
    ) -> DictResponse:
        """The real signature: the docs' ``name=`` is a TypeError, as on the platform."""
        path = await self._run_path(run_name)
        body = {
            "deployment_name": deployment_name,
            "version": version,
            "release_notes": release_notes,
            "criterion": criterion,
            "checkpoint_name": checkpoint_name,
        }
        return await self._remember_deployment(
            await self.http_client.exec(f"{path}/deployments", "POST", body)
        )

    async def _remember_deployment(self, result: DictResponse) -> DictResponse:
        if not is_error(result) and isinstance(result.get("response"), dict):
            self._deployment_id = result["response"].get("id", self._deployment_id)
        return result

    @enveloped
    async def list_deployments(
        self, *, run_name: str | None = None, limit: int = 100, skip: int = 0
    ) -> DictResponse:
        path = await self._run_path(run_name)
        return await self.http_client.exec(
            f"{path}/deployments", "GET", params={"limit": limit, "skip": skip}
        )

    @enveloped
    async def select_deployment(
        self, *, run_name: str | None = None, deployment_name: str
    ) -> DictResponse:
        path = await self._run_path(run_name)
        return await self._remember_deployment(
            await self.http_client.exec(
                f"{path}/deployments/{quote(deployment_name, safe='')}",
                "GET",
                params={"identifier": "name"},
            )
        )

    async def _deployment_path(self, run_name: str | None, deployment_name: str | None) -> str:
        path = await self._run_path(run_name)
        if deployment_name:
            check(await self.select_deployment(run_name=run_name, deployment_name=deployment_name))
        if self._deployment_id is None:
            raise Failed(
                {
                    "error": NO_RESOURCE_SELECTED.format(
                        resource_name="deployment",
                        select_method="select_deployment",
                        arg_name="deployment_name",
                    )
                }
            )
        return f"{path}/deployments/{self._deployment_id}"

    @enveloped
    async def run_inferences(
        self,
        dataset_path: str,
        params: dict[str, Any] | None = None,
        *,
        run_name: str | None = None,
        deployment_name: str | None = None,
    ) -> DictResponse:
        path = await self._deployment_path(run_name, deployment_name)
        body = {"dataset_path": dataset_path, "params": params}
        return await self.http_client.exec(f"{path}/inferences", "POST", body)

    @enveloped
    async def sync_inference(
        self,
        dataset: Any,
        *,
        deployment_name: str | None = None,
        run_name: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> DictResponse:
        """Predictions for a DataFrame, a CSV file's ``Path`` or a file object, sent whole as
        ``dataset_file``; a ``str`` is ``NotImplementedError``, as in the real client."""
        path = await self._deployment_path(run_name, deployment_name)
        try:
            text = _csv_text(dataset)  # a str raises, as in the real client
        except (OSError, TypeError, UnicodeDecodeError) as error:
            return {"error": str(error)}
        body = {"dataset_file": text, "params": params}
        return await self.http_client.exec(f"{path}/inferences/sync", "POST", body)
