"""Experiment runs of a project and their checkpoints."""

from __future__ import annotations

from fastapi import APIRouter

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import (
    PlatformDep,
    ProjectIdDep,
    flag,
    number,
    optional,
)

router = APIRouter(prefix="/projects/{pid}/experiment_runs", tags=["experiment runs"])


@router.post(
    "",
    response_model=schemas.Run,
    response_model_exclude_unset=True,  # no "error" key unless the run failed
    status_code=201,
    description=(
        "Submit a training run. params: hyperparameters, cpu_count, memory (MB), timeout "
        "(seconds per attempt, 1..86400), retries (extra attempts), gpu_type, and the "
        "emulator-only 'emulator' object (epoch_seconds, faults)."
    ),
)
def create_run(
    pid: ProjectIdDep,
    body: schemas.RunCreate,
    platform: PlatformDep,
    local_webhook_url: str | None = None,
) -> schemas.Run:
    return platform.runs.create(pid, body, optional(local_webhook_url))


@router.get("", response_model=list[schemas.Run], response_model_exclude_unset=True)
def list_runs(
    pid: ProjectIdDep,
    platform: PlatformDep,
    experiment_id: str | None = None,
    limit: str | None = None,
    skip: str | None = None,
    descending: str | None = None,
    identifier: str | None = None,  # sent by the real client; runs are listed whatever it says
) -> list[schemas.Run]:
    return platform.runs.page(
        pid,
        optional(experiment_id),
        number("limit", limit, 100),
        number("skip", skip, 0),
        flag("descending", descending, True),
    )


# The request polled most: async, as a hop through the thread pool would cost more than the few
# lookups it makes.
@router.get("/{value}", response_model=schemas.Run, response_model_exclude_unset=True)
async def get_run(
    pid: ProjectIdDep, value: str, platform: PlatformDep, identifier: str = "id"
) -> schemas.Run:
    return platform.runs.get(pid, value, identifier)


@router.delete(
    "/{value}",
    response_model=schemas.Deleted,
    response_model_exclude_unset=True,
    description="A run that is pending or running is stopped first (its attempt is cancelled).",
)
def delete_run(
    pid: ProjectIdDep, value: str, platform: PlatformDep, identifier: str = "id"
) -> schemas.Deleted:
    return platform.runs.delete(pid, value, identifier)


@router.get("/{rid}/checkpoints", response_model=list[schemas.Checkpoint])
def list_checkpoints(
    pid: ProjectIdDep, rid: str, platform: PlatformDep
) -> list[schemas.Checkpoint]:
    return platform.runs.checkpoints(pid, rid)


@router.get("/{rid}/checkpoints/{name}", response_model=schemas.Checkpoint)
def get_checkpoint(
    pid: ProjectIdDep,
    rid: str,
    name: str,
    platform: PlatformDep,
    identifier: str = "name",  # sent by the real client; checkpoints are named, never numbered
) -> schemas.Checkpoint:
    return platform.runs.checkpoint(pid, rid, name)
