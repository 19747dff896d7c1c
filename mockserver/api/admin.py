"""Users, projects, API keys and user-project links: what ``AdminClient`` calls."""

from __future__ import annotations

from fastapi import APIRouter

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.api.deps import AdminDep, PlatformDep, PrincipalDep, number, optional
from qcog_mock.mockserver.documents import Membership, Project, User
from qcog_mock.mockserver.errors import Forbidden

router = APIRouter(tags=["admin"])


@router.get("/users/admin_user", response_model=User)
def admin_user(platform: PlatformDep, admin: AdminDep) -> User:
    return platform.identity.admin_user()


@router.get("/users", response_model=User)
def user_by_email(email: str, platform: PlatformDep, admin: AdminDep) -> User:
    return platform.identity.user_by_email(email)


@router.post("/users", response_model=User, status_code=201)
def create_user(body: schemas.UserCreate, platform: PlatformDep, admin: AdminDep) -> User:
    return platform.identity.create_user(body.email, body.name, body.system_role)


@router.get(
    "/projects",
    response_model=Project | list[Project],
    description="With project_name: that project (or a not-found error); else a page of projects.",
)
def projects(
    platform: PlatformDep,
    principal: PrincipalDep,
    project_name: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> Project | list[Project]:
    name = optional(project_name)
    if name is not None:
        project = platform.identity.project_by_name(name)
        principal.require_project(project.id)
        return project
    if not principal.admin:
        raise Forbidden("Listing projects needs an admin key or the admin's basic credentials.")
    found = platform.identity.list_projects(
        number("limit", limit, 100), number("offset", offset, 0)
    )
    return [project for project in found]


@router.post("/projects", response_model=Project, status_code=201)
def create_project(body: schemas.ProjectCreate, platform: PlatformDep, admin: AdminDep) -> Project:
    return platform.identity.create_project(body.name, body.description, body.user_associated)


@router.get("/projects/{pid}", response_model=Project)
def get_project(pid: str, platform: PlatformDep, principal: PrincipalDep) -> Project:
    principal.require_project(pid)
    return platform.identity.get_project(pid)


@router.put("/projects/{pid}", response_model=Project)
def update_project(
    pid: str, body: schemas.ProjectUpdate, platform: PlatformDep, admin: AdminDep
) -> Project:
    return platform.identity.update_project(pid, body)


@router.post("/api_keys", response_model=schemas.ApiKey, status_code=201)
def create_api_key(
    body: schemas.ApiKeyCreate, platform: PlatformDep, admin: AdminDep
) -> schemas.ApiKey:
    record, key = platform.identity.create_api_key(body.user_id, optional(body.project_id))
    return schemas.ApiKey(**record.to_doc(), x_api_key=key)  # the one time the key is shown


@router.post("/user_projects", response_model=Membership, status_code=201)
def add_user_to_project(
    body: schemas.UserProjectCreate, platform: PlatformDep, admin: AdminDep
) -> Membership:
    return platform.identity.add_user_to_project(body.user_id, body.project_id, body.role)
