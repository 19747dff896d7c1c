"""``AdminClient``: users, projects, keys, environments, experiments."""

from __future__ import annotations

from typing import Any, Literal

from qcog_mock.client._base import Initializer, is_error
from qcog_mock.client._http import DictResponse, read_store, write_store


class AdminClient(Initializer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._experiment_id: str | None = None
        self._environment_id: str | None = None

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            raise ValueError("No experiment ID found. Get an experiment first.")
        return self._experiment_id

    @property
    def environment_id(self) -> str:
        if self._environment_id is None:
            raise ValueError("No environment ID found. Get an environment first.")
        return self._environment_id

    # Local store ----------------------------------------------------------------------------

    @classmethod
    def login(cls, api_key: str) -> DictResponse:
        store = read_store()
        if store.get("api_key"):
            return {"error": "Another API Key is already set. Log out first."}
        write_store({**store, "api_key": api_key.strip()})
        return {"response": "Login successful - Your API key is saved"}

    @classmethod
    def logout(cls) -> DictResponse:
        write_store({})
        return {"response": "Logout successful"}

    # Identity, users, keys ------------------------------------------------------------------

    async def whoami(self) -> DictResponse:
        return await self.http_client.exec("/whoami", "GET")

    async def one_time_create_api_key(self, user_id: str) -> DictResponse:
        return await self.http_client.exec("/api_keys", "POST", {"user_id": user_id})

    async def generate_api_key(self, user_id: str, project_id: str | None = None) -> DictResponse:
        return await self.http_client.exec(
            "/api_keys", "POST", {"user_id": user_id, "project_id": project_id}
        )

    async def create_user(
        self, *, email: str, system_role: Literal["admin", "user"], name: str
    ) -> DictResponse:
        body = {"email": email, "system_role": system_role, "name": name}
        return await self.http_client.exec("/users", "POST", body)

    async def get_user_by_email(self, email: str) -> DictResponse:
        return await self.http_client.exec("/users", "GET", params={"email": email})

    async def get_or_create_user(
        self, email: str, system_role: Literal["admin", "user"], name: str
    ) -> DictResponse:
        found = await self.get_user_by_email(email)
        if is_error(found) and "not found" in str(found["error"]).lower():
            return await self.create_user(email=email, system_role=system_role, name=name)
        return found

    async def get_admin_user(self) -> DictResponse:
        return await self.http_client.exec("/users/admin_user", "GET")

    # Projects -------------------------------------------------------------------------------

    async def list_projects(self, limit: int = 100, offset: int = 0) -> DictResponse:
        return await self.http_client.exec(
            "/projects", "GET", params={"limit": limit, "offset": offset}
        )

    async def get_or_create_project(
        self, *, name: str, description: str, user_id: str | None = None
    ) -> DictResponse:
        found = await self.http_client.exec("/projects", "GET", params={"project_name": name})
        if not (is_error(found) and "not found" in str(found["error"]).lower()):
            return found
        members = [{"user_id": user_id, "project_role": "owner"}] if user_id else []
        body = {"name": name, "description": description, "user_associated": members}
        return await self.http_client.exec("/projects", "POST", body)

    async def create_project(
        self, *, name: str, description: str, user_name: str, user_email: str
    ) -> DictResponse:
        user = await self.get_or_create_user(user_email, "user", user_name)
        if is_error(user):
            return user
        user_id = user["response"]["id"]
        project = await self.get_or_create_project(
            name=name, description=description, user_id=user_id
        )
        if is_error(project):
            return project
        key = await self.generate_api_key(user_id, project["response"]["id"])
        if is_error(key):
            return key
        return {
            "response": {
                "user": user["response"],
                "project": project["response"],
                "api_key": key["response"],
            }
        }

    async def add_user_to_project(
        self, user_id: str, project_id: str, project_role: str
    ) -> DictResponse:
        body = {"user_id": user_id, "project_id": project_id, "role": project_role}
        return await self.http_client.exec("/user_projects", "POST", body)

    async def _change_gpus(self, project_id: str, gpu_type: str, add: bool) -> DictResponse:
        project = await self.http_client.exec(f"/projects/{project_id}", "GET")
        if is_error(project):
            return project
        gpus = [g for g in project["response"].get("allowed_gpus", []) if g != gpu_type]
        if add:
            gpus.append(gpu_type)
        return await self.http_client.exec(f"/projects/{project_id}", "PUT", {"allowed_gpus": gpus})

    async def add_gpu_to_project(self, project_id: str, gpu_type: str) -> DictResponse:
        return await self._change_gpus(project_id, gpu_type, add=True)

    async def remove_gpu_from_project(self, project_id: str, gpu_type: str) -> DictResponse:
        return await self._change_gpus(project_id, gpu_type, add=False)

    # Environments and experiments -----------------------------------------------------------

    async def create_environment(
        self,
        name: str,
        *,
        docker_image: str,
        tag: str,
        description: str | None = None,
        provider: str = "modal",
        version: str = "0.0.1",
        metadata: dict[str, Any] | None = None,
    ) -> DictResponse:
        body = {
            "name": name,
            "description": description,
            "configuration": {
                "provider": provider,
                "version": version,
                "docker_image": docker_image,
                "tag": tag,
            },
            "metadata": metadata,
        }
        return await self.http_client.exec("/environments", "POST", body)

    async def get_environment(
        self, environment_id: str, identifier: Literal["id", "name"] = "id", load: bool = False
    ) -> DictResponse:
        result = await self.http_client.exec(
            f"/environments/{environment_id}", "GET", params={"identifier": identifier}
        )
        if load and not is_error(result):
            self._environment_id = result["response"]["id"]
        return result

    async def list_environments(
        self, limit: int = 100, offset: int = 0, instance: Literal["cpu", "gpu"] | None = None
    ) -> DictResponse:
        params = {"limit": limit, "offset": offset, "instance": instance}
        return await self.http_client.exec("/environments", "GET", params=params)

    async def delete_environment(
        self, environment_id: str, identifier: Literal["id", "name"] = "id"
    ) -> DictResponse:
        return await self.http_client.exec(
            f"/environments/{environment_id}", "DELETE", params={"identifier": identifier}
        )

    async def create_experiment(
        self, name: str, *, file_path: str, description: str | None = None, format: str = "zip"
    ) -> DictResponse:
        body = {"name": name, "description": description, "file_path": file_path, "format": format}
        return await self.http_client.exec("/experiments", "POST", body)

    async def get_experiment(
        self, experiment_id: str, identifier: Literal["id", "name"] = "id", load: bool = False
    ) -> DictResponse:
        result = await self.http_client.exec(
            f"/experiments/{experiment_id}", "GET", params={"identifier": identifier}
        )
        if load and not is_error(result):
            self._experiment_id = result["response"]["id"]
        return result

    async def list_experiments(self, limit: int = 100, offset: int = 0) -> DictResponse:
        return await self.http_client.exec(
            "/experiments", "GET", params={"limit": limit, "offset": offset}
        )
