"""Experiment runs of a project and their checkpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import BackendDep, ProjectDep, flag, number, optional

router = APIRouter(prefix="/projects/{pid}/experiment_runs", tags=["experiment runs"])


@router.post(
    "",
    response_model=schemas.Run,
    status_code=201,
    description=(
        "Submit a training run. params: hyperparameters, cpu_count, memory (MB), timeout "
        "(seconds per attempt, 1..86400), retries (extra attempts), gpu_type, and the "
        "emulator-only 'emulator' object (epoch_seconds, faults)."
    ),
)
def create_run(
    pid: ProjectDep,
    body: schemas.RunCreate,
    backend: BackendDep,
    local_webhook_url: str | None = None,
) -> dict[str, Any]:
    return backend.create_run(pid, body.model_dump(), optional(local_webhook_url))


@router.get("", response_model=list[schemas.Run])
def list_runs(
    pid: ProjectDep,
    backend: BackendDep,
    experiment_id: str | None = None,
    limit: str | None = None,
    skip: str | None = None,
    descending: str | None = None,
    identifier: str | None = None,
) -> list[dict[str, Any]]:
    return backend.list_runs(
        pid,
        optional(experiment_id),
        number("limit", limit, 100),
        number("skip", skip, 0),
        flag("descending", descending, True),
    )


@router.get("/{value}", response_model=schemas.Run)
def get_run(
    pid: ProjectDep, value: str, backend: BackendDep, identifier: str = "id"
) -> dict[str, Any]:
    return backend.get_run(pid, value, identifier)


@router.delete(
    "/{value}",
    response_model=schemas.Deleted,
    description="A run that is pending or running is stopped first (its attempt is cancelled).",
)
def delete_run(
    pid: ProjectDep, value: str, backend: BackendDep, identifier: str = "id"
) -> dict[str, Any]:
    return backend.delete_run(pid, value, identifier)


@router.get("/{rid}/checkpoints", response_model=list[schemas.Checkpoint])
def list_checkpoints(pid: ProjectDep, rid: str, backend: BackendDep) -> list[dict[str, Any]]:
    return backend.list_checkpoints(pid, rid)


@router.get("/{rid}/checkpoints/{name}", response_model=schemas.Checkpoint)
def get_checkpoint(
    pid: ProjectDep, rid: str, name: str, backend: BackendDep, identifier: str = "name"
) -> dict[str, Any]:
    return backend.get_checkpoint(pid, rid, name)
