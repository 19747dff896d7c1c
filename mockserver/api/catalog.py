"""Environments and experiments: the platform's catalogue, and who am I."""

from __future__ import annotations

from fastapi import APIRouter

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import AdminDep, PlatformDep, PrincipalDep, number, optional
from qcog_mock.mockserver.documents import Environment, Experiment

router = APIRouter()


@router.get("/whoami", response_model=schemas.WhoAmI, tags=["identity"])
def whoami(platform: PlatformDep, principal: PrincipalDep) -> schemas.WhoAmI:
    return platform.identity.whoami(principal)


@router.get("/environments", response_model=list[Environment], tags=["environments"])
def list_environments(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: str | None = None,
    offset: str | None = None,
    instance: str | None = None,
) -> list[Environment]:
    found = platform.catalog.list_environments(
        number("limit", limit, 100), number("offset", offset, 0), optional(instance)
    )
    return [environment for environment in found]


@router.post("/environments", response_model=Environment, status_code=201, tags=["environments"])
def create_environment(
    body: schemas.EnvironmentCreate, platform: PlatformDep, admin: AdminDep
) -> Environment:
    return platform.catalog.create_environment(body)


@router.get("/environments/{value}", response_model=Environment, tags=["environments"])
def get_environment(
    value: str, platform: PlatformDep, principal: PrincipalDep, identifier: str = "id"
) -> Environment:
    return platform.catalog.get_environment(value, identifier)


@router.delete(
    "/environments/{value}",
    response_model=schemas.Deleted,
    response_model_exclude_unset=True,
    tags=["environments"],
)
def delete_environment(
    value: str, platform: PlatformDep, admin: AdminDep, identifier: str = "id"
) -> schemas.Deleted:
    return platform.catalog.delete_environment(value, identifier)


@router.get("/experiments", response_model=list[Experiment], tags=["experiments"])
def list_experiments(
    platform: PlatformDep,
    principal: PrincipalDep,
    limit: str | None = None,
    offset: str | None = None,
) -> list[Experiment]:
    found = platform.catalog.list_experiments(
        number("limit", limit, 100), number("offset", offset, 0)
    )
    return [experiment for experiment in found]


@router.post("/experiments", response_model=Experiment, status_code=201, tags=["experiments"])
def create_experiment(
    body: schemas.ExperimentCreate, platform: PlatformDep, admin: AdminDep
) -> Experiment:
    return platform.catalog.create_experiment(body)


@router.get("/experiments/{value}", response_model=Experiment, tags=["experiments"])
def get_experiment(
    value: str, platform: PlatformDep, principal: PrincipalDep, identifier: str = "id"
) -> Experiment:
    return platform.catalog.get_experiment(value, identifier)
