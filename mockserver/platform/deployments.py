"""Deployments of a run's checkpoints, and inferences on them."""

from __future__ import annotations

import re
from concurrent.futures import Executor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from qcog_mock.mockserver import s3
from qcog_mock.mockserver.documents import Checkpoint, Deployment, Run
from qcog_mock.mockserver.engine.inference import Inference, InferenceJob, run_inference
from qcog_mock.mockserver.errors import BadRequest, Conflict, Invalid, NotFound, Unavailable
from qcog_mock.mockserver.platform.shared import Shared, check_name, page, read_text
from qcog_mock.mockserver.platform.timeline import Timeline
from qcog_mock.mockserver.schemas import DeploymentCreate, Predictions

SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_OPERATORS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def select_checkpoint(checkpoints: list[Checkpoint], criterion: Any) -> Checkpoint:
    """The checkpoint a criterion picks: ``smallest``/``greatest`` (or ``largest``) metric, ties to
    the latest; or, with an operator and a number, the latest checkpoint satisfying it."""
    if not isinstance(criterion, dict) or "metric" not in criterion:
        raise Invalid(
            "criterion: give checkpoint_name, or a criterion {metric, value[, operator]}."
        )
    metric, value, operator = criterion["metric"], criterion.get("value"), criterion.get("operator")
    scored = [c for c in checkpoints if metric in c.metrics]
    if checkpoints and not scored:
        available = sorted(checkpoints[-1].metrics)
        raise Invalid(f"criterion.metric: '{metric}' is not a checkpoint metric; use {available}.")
    if operator is None and value in ("smallest", "greatest", "largest"):
        if not scored:
            raise NotFound("Checkpoint", f"{metric} {value}", by="criterion")
        sign = 1 if value == "smallest" else -1
        return min(reversed(scored), key=lambda c: sign * c.metrics[metric])
    if operator not in _OPERATORS or isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(
            "criterion: value is 'smallest' or 'greatest', or a number with an operator among "
            f"{sorted(_OPERATORS)}."
        )
    matching = [c for c in scored if _OPERATORS[operator](c.metrics[metric], value)]
    if not matching:
        raise NotFound("Checkpoint", f"{metric} {operator} {value}", by="criterion")
    return matching[-1]


class Deployments:
    def __init__(self, shared: Shared, timeline: Timeline, executor: Executor) -> None:
        self.shared = shared
        self.records = shared.records
        self.timeline = timeline
        self.executor = executor  # inferences compute where attempts do: in a worker

    def _run(self, project_id: str, run_id: str) -> Run:
        return self.shared.lookup(self.records.runs, "Experiment run", run_id, "id", project_id)

    def remove_for_run(self, run_id: str) -> None:
        """A run's deployments go with it."""
        for deployment in self.records.deployments.all(run_id):
            self.records.deployments.delete(deployment.id)

    def deploy(self, project_id: str, run_id: str, body: DeploymentCreate) -> Deployment:
        """A deployment of the named checkpoint, or of the one ``criterion`` selects."""
        run = self._run(project_id, run_id)
        name = check_name("deployment_name", body.deployment_name)
        version = body.version or "v0.0.1"
        if not SEMVER.fullmatch(version):
            raise Invalid(
                f"version: '{version}' is not a semantic version such as v0.0.1 or 1.0.0."
            )
        if self.records.deployments.find(name, run.id) is not None:
            raise Conflict(f"Deployment '{name}' already exists for run '{run.name}'.")
        checkpoints = self.records.checkpoints(run.id)
        if body.checkpoint_name:
            chosen = next((c for c in checkpoints if c.name == body.checkpoint_name), None)
            if chosen is None:
                raise NotFound("Checkpoint", body.checkpoint_name, by="name")
        else:
            chosen = select_checkpoint(checkpoints, body.criterion)
        deployment_id = self.shared.new_id()
        deployment = Deployment(
            id=deployment_id,
            deployment_id=deployment_id,
            name=name,
            deployment_name=name,
            version=version,
            release_notes=body.release_notes,
            status="active",
            checkpoint_name=chosen.name,
            checkpoint_epoch=chosen.epoch,
            criterion=body.criterion,
            run_id=run.id,
            run_status=run.status,
            project_id=project_id,
            created_at=self.shared.now(),
        )
        self.shared.insert(
            self.records.deployments,
            deployment,
            f"Deployment '{name}' already exists for run '{run.name}'.",
        )
        self.timeline.emit("deployment.created", run, deployment=name, checkpoint=chosen.name)
        return deployment

    def page(self, project_id: str, run_id: str, limit: int, skip: int) -> list[Deployment]:
        run = self._run(project_id, run_id)
        return page(self.records.deployments.all(run.id), limit, skip)

    def get(self, project_id: str, run_id: str, value: str, identifier: str) -> Deployment:
        run = self._run(project_id, run_id)
        return self.shared.lookup(self.records.deployments, "Deployment", value, identifier, run.id)

    def infer(self, project_id: str, run_id: str, deployment_id: str, text: str) -> Predictions:
        """Predictions of a deployment's checkpoint for CSV text, by the trainer's ``predict``:
        columns by position, as the platform's ``predict``; name differences in ``notes``."""
        deployment = self.get(project_id, run_id, deployment_id, "id")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid("dataset_file: not valid Unicode text; send the CSV as UTF-8.") from None
        settings = self.shared.settings
        job = InferenceJob(
            str(self.shared.files.root),
            deployment.run_id,
            deployment.checkpoint_name,
            text,
            settings.worker_threads,
        )
        result = self._compute(job, settings.worker_wall_seconds)
        if result.error is not None:
            raise Invalid(f"dataset: {result.error}")
        return Predictions(
            predictions=result.predictions,
            rows=len(result.predictions),
            notes=result.notes or None,
            deployment=deployment.name,
            checkpoint_name=deployment.checkpoint_name,
        )

    def _compute(self, job: InferenceJob, timeout: float) -> Inference:
        """The job's answer from a worker; ``Unavailable`` if the worker ends without one or
        takes longer than ``timeout`` wall seconds (then it is stopped)."""
        try:
            future = self.executor.submit(run_inference, job)
        except Exception as error:
            raise Unavailable(f"No worker could take the inference: {error}") from None
        try:
            result: Inference = future.result(timeout=timeout)
            return result
        except FutureTimeout:
            if (kill := getattr(self.executor, "kill", None)) is not None:
                kill(future)
            raise Unavailable(
                f"The inference took longer than {timeout:g} s (serve --worker-timeout)."
            ) from None
        except Exception as error:
            raise Unavailable(
                f"The inference's worker ended before it answered ({error}); send the request "
                "again."
            ) from None

    def infer_dataset(
        self, project_id: str, run_id: str, deployment_id: str, dataset_path: str
    ) -> Predictions:
        """Batch inference: ``dataset_path`` names a dataset of the project, or a local CSV."""
        if not dataset_path:
            raise Invalid(
                "dataset_path: required (a dataset name in the project, or a local path)."
            )
        datasets = self.records.datasets
        dataset = datasets.find(dataset_path, project_id) or datasets.get(dataset_path)
        if dataset is not None and dataset.project_id == project_id:
            if not dataset.readable:
                raise BadRequest(f"dataset_path: {s3.no_access(dataset)}.")
            text = read_text(self.shared.files.dataset(dataset.id), "dataset_path")
            result = self.infer(project_id, run_id, deployment_id, text)
            result.dataset = dataset.name
            return result
        path = self.shared.local_file(dataset_path, "dataset_path")
        result = self.infer(project_id, run_id, deployment_id, read_text(path, "dataset_path"))
        result.dataset = dataset_path
        return result
