"""Experiment runs of a project, and their checkpoints."""

from __future__ import annotations

import json
import logging
from typing import Any

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.documents import Environment, Run
from qcog_mock.mockserver.engine.attempts import Engine
from qcog_mock.mockserver.errors import Invalid, NotFound
from qcog_mock.mockserver.platform.deployments import Deployments
from qcog_mock.mockserver.platform.identity import Identity
from qcog_mock.mockserver.platform.shared import Shared, check_name, check_page
from qcog_mock.mockserver.platform.timeline import Timeline
from qcog_mock.mockserver.runparams import RunParams, validate_params
from qcog_mock.mockserver.webhooks.signing import check_url

logger = logging.getLogger(__name__)


class Runs:
    def __init__(
        self,
        shared: Shared,
        identity: Identity,
        engine: Engine,
        timeline: Timeline,
        deployments: Deployments,
    ) -> None:
        self.shared = shared
        self.store = shared.store
        self.records = shared.records
        self.identity = identity
        self.engine = engine
        self.timeline = timeline
        self.deployments = deployments  # they go with their run

    def _lookup(self, project_id: str, value: str, identifier: str = "id") -> Run:
        return self.shared.lookup(
            self.records.runs, "Experiment run", value, identifier, project_id
        )

    def create(
        self, project_id: str, body: schemas.RunCreate, local_webhook_url: str | None
    ) -> schemas.Run:
        settings = self.shared.settings
        name = check_name("name", body.name)
        check_metadata(body.metadata)
        if local_webhook_url is not None:
            check_url(local_webhook_url, allow_remote=settings.allow_remote_webhooks)
        project = self.identity.get_project(project_id)
        if self.records.experiments.get(body.experiment_id) is None:
            raise NotFound("Experiment", body.experiment_id)
        environment = self.records.environments.get(body.environment_id)
        if environment is None:
            raise NotFound("Environment", body.environment_id)
        dataset = self.records.datasets.get(body.dataset_id)
        if dataset is None or dataset.project_id != project_id:
            raise NotFound("Dataset", body.dataset_id)
        params = validate_params(
            body.params,
            max_retries=settings.max_retries,
            allowed_gpus=project.allowed_gpus,
        )
        with self.shared.lock:
            existing = self.shared.replaceable(
                self.records.runs, "Experiment run", project_id, name, bool(body.override)
            )
            if existing is not None:
                self._remove(existing)
            seq = int(self.store.setting("run_seq") or 0) + 1
            self.store.set_setting("run_seq", seq)
            now = self.shared.clock.now()
            run = Run(
                id=self.shared.new_id(),
                seq=seq,
                name=name,
                description=body.description,
                project_id=project_id,
                experiment_id=body.experiment_id,
                environment_id=body.environment_id,
                dataset_id=dataset.id,
                params=params,
                metadata=body.metadata or {},
                local_webhook_url=local_webhook_url,
                created_at=now,
                updated_at=now,
                notes=gpu_notes(environment, params),
            )
            run.move_to("pending")
            # One write: the run, its first attempt's time and its first events. A kill before
            # the commit leaves nothing; after it, recovery starts the attempt.
            with self.store.transaction():
                self.timeline.emit("run.created", run)
                self.timeline.emit("run.pending", run)
                self.engine.schedule_first(run)
            self.engine.start(run, 1)
        logger.info("Run %s submitted (%s epochs)", name, params.hyperparameters.epochs)
        return run.public(now)

    def public(self, run: Run) -> schemas.Run:
        """The run as the API shows it: live metrics carry the loss histories so far."""
        view = run.public(self.shared.clock.now())
        metrics = view.metrics
        if metrics and "epoch" in metrics and "train_loss_history" not in metrics:
            train, val = self.store.loss_history(run.id, up_to=metrics["epoch"])
            view.metrics = {**metrics, "train_loss_history": train, "val_loss_history": val}
        return view

    def get(self, project_id: str, value: str, identifier: str) -> schemas.Run:
        return self.public(self._lookup(project_id, value, identifier))

    def find(self, run_id: str) -> schemas.Run:
        """A run of any project, by id: the operator's view (the dashboard)."""
        run = self.records.runs.get(run_id)
        if run is None:
            raise NotFound("Experiment run", run_id)
        return self.public(run)

    def page(
        self,
        project_id: str,
        experiment: str | None,
        limit: int,
        skip: int,
        descending: bool,
    ) -> list[schemas.Run]:
        check_page(limit, skip)
        where = None
        if experiment is not None:
            experiments = self.records.experiments
            found = experiments.get(experiment) or experiments.find(experiment)
            if found is None:
                raise NotFound("Experiment", experiment)
            where = ("experiment_id", found.id)
        runs = self.records.runs.all(
            project_id, where=where, limit=limit, offset=skip, descending=descending
        )
        return [self.public(run) for run in runs]

    def delete(self, project_id: str, value: str, identifier: str) -> schemas.Deleted:
        run = self._lookup(project_id, value, identifier)
        was = run.status
        self._remove(run)
        return schemas.Deleted(deleted=True, id=run.id, name=run.name, status_before=was)

    def _remove(self, run: Run) -> None:
        if not run.finished:
            self.engine.cancel(run.id)  # stopped first: its attempt ends "cancelled"
        run = self.records.runs.get(run.id) or run  # as the cancellation left it
        self.deployments.remove_for_run(run.id)
        self.records.runs.delete(run.id)
        self.store.delete_checkpoints(run.id)
        self.shared.files.delete_run(run.id)
        self.timeline.emit("run.deleted", run)

    # Checkpoints ----------------------------------------------------------------------------

    def checkpoints(self, project_id: str, run_id: str) -> list[schemas.Checkpoint]:
        run = self._lookup(project_id, run_id)
        return [c.public() for c in self.records.checkpoints(run.id)]

    def checkpoint(self, project_id: str, run_id: str, name: str) -> schemas.Checkpoint:
        for checkpoint in self.checkpoints(project_id, run_id):
            if checkpoint.name == name:
                return checkpoint
        raise NotFound("Checkpoint", name, by="name")


MAX_METADATA_BYTES = 64 * 1024  # returned with every GET of the run: kept small


def check_metadata(metadata: dict[str, Any] | None) -> None:
    size = len(json.dumps(metadata or {}).encode())
    if size > MAX_METADATA_BYTES:
        raise Invalid(
            f"metadata: {size:,} bytes is more than the {MAX_METADATA_BYTES // 1024} KB a run "
            "keeps; store large data as a dataset and put its name in metadata."
        )


def gpu_notes(environment: Environment, params: RunParams) -> list[str]:
    """A run the platform would train on a GPU (``cuda`` or ``auto`` on a GPU environment or
    with a ``gpu_type``) trains on the CPU here, and says so."""
    on_gpu = environment.instance == "gpu" or params.gpu_type is not None
    if not on_gpu or params.hyperparameters.device not in ("auto", "cuda"):
        return []
    gpu = f"the {params.gpu_type}" if params.gpu_type else f"the GPU of '{environment.name}'"
    return [f"trained on CPU: the emulator has no GPU; the platform would use {gpu}"]
