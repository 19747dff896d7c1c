"""Deployments of a run's checkpoints, and inferences with the deployed model."""

from __future__ import annotations

from fastapi import APIRouter

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import PlatformDep, ProjectIdDep, number
from qcog_mock.mockserver.documents import Deployment
from qcog_mock.mockserver.errors import Invalid

router = APIRouter(prefix="/projects/{pid}/experiment_runs/{rid}", tags=["deployments"])


@router.post("/checkpoints/deploy", response_model=Deployment, status_code=201)
def deploy_checkpoint(
    pid: ProjectIdDep, rid: str, body: schemas.CheckpointDeploy, platform: PlatformDep
) -> Deployment:
    if not body.checkpoint_name:
        raise Invalid("checkpoint_name: required to deploy a checkpoint.")
    named = schemas.DeploymentCreate(
        deployment_name=body.deployment_name,
        checkpoint_name=body.checkpoint_name,
        version=body.version,
        release_notes=body.release_notes,
    )
    return platform.deployments.deploy(pid, rid, named)


@router.post(
    "/deployments",
    response_model=Deployment,
    status_code=201,
    description=(
        "Deploy checkpoint_name, or the checkpoint a criterion selects: {metric, value} with "
        "value 'smallest' or 'greatest' ('largest'), or {metric, operator, value} with a number "
        "(the latest checkpoint satisfying it)."
    ),
)
def create_deployment(
    pid: ProjectIdDep, rid: str, body: schemas.DeploymentCreate, platform: PlatformDep
) -> Deployment:
    return platform.deployments.deploy(pid, rid, body)


@router.get("/deployments", response_model=list[Deployment])
def list_deployments(
    pid: ProjectIdDep,
    rid: str,
    platform: PlatformDep,
    limit: str | None = None,
    skip: str | None = None,
) -> list[Deployment]:
    found = platform.deployments.page(
        pid, rid, number("limit", limit, 100), number("skip", skip, 0)
    )
    return [deployment for deployment in found]


@router.get("/deployments/{value}", response_model=Deployment)
def get_deployment(
    pid: ProjectIdDep, rid: str, value: str, platform: PlatformDep, identifier: str = "id"
) -> Deployment:
    return platform.deployments.get(pid, rid, value, identifier)


@router.post(
    "/deployments/{did}/inferences/sync",
    response_model=schemas.Predictions,
    response_model_exclude_unset=True,
    description=(
        "Predictions for dataset_file (the CSV text): one list per row, one value per target. "
        "Columns must be the training features in training order; target columns are ignored "
        "(see notes)."
    ),
)
def sync_inference(
    pid: ProjectIdDep, rid: str, did: str, body: schemas.SyncInference, platform: PlatformDep
) -> schemas.Predictions:
    return platform.deployments.infer(pid, rid, did, body.dataset_file)


@router.post(
    "/deployments/{did}/inferences",
    response_model=schemas.Predictions,
    response_model_exclude_unset=True,
    description=(
        "Batch predictions for dataset_path: a dataset of the project (by name or id) or a local "
        "CSV path. Same shape as the sync answer, plus the dataset."
    ),
)
def run_inferences(
    pid: ProjectIdDep, rid: str, did: str, body: schemas.BatchInference, platform: PlatformDep
) -> schemas.Predictions:
    return platform.deployments.infer_dataset(pid, rid, did, body.dataset_path)
