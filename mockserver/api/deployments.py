"""Deployments and inferences of a run: present in the API, not served yet (501).

The routes exist so that clients get a clear, JSON answer naming what is missing; they still
check that the run exists.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mockserver.api.deps import BackendDep, ProjectDep
from mockserver.errors import NotImplementedYet

router = APIRouter(prefix="/projects/{pid}/experiment_runs/{rid}", tags=["deployments"])

MESSAGE = (
    "{what} are not implemented yet in qcog-mock; training runs and checkpoints are. "
    "Use trainer.predict on a checkpoint meanwhile."
)


def _missing(backend: BackendDep, pid: str, rid: str, what: str) -> dict[str, Any]:
    backend.get_run(pid, rid, "id")
    raise NotImplementedYet(MESSAGE.format(what=what))


@router.post("/checkpoints/deploy", status_code=501)
def deploy_checkpoint(pid: ProjectDep, rid: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Deployments")


@router.get("/deployments", status_code=501)
def list_deployments(pid: ProjectDep, rid: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Deployments")


@router.post("/deployments", status_code=501)
def create_deployment(pid: ProjectDep, rid: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Deployments")


@router.get("/deployments/{name}", status_code=501)
def get_deployment(pid: ProjectDep, rid: str, name: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Deployments")


@router.post("/deployments/{did}/inferences", status_code=501)
def run_inferences(pid: ProjectDep, rid: str, did: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Inferences")


@router.post("/deployments/{did}/inferences/sync", status_code=501)
def sync_inference(pid: ProjectDep, rid: str, did: str, backend: BackendDep) -> dict[str, Any]:
    return _missing(backend, pid, rid, "Inferences")
