"""``ProjectClient``: the API key's project — its datasets and run deletion."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, Literal

from qcog_mock.client._base import Initializer, is_error
from qcog_mock.client._http import DictResponse

NO_PROJECT = "No project ID found. Set a project first or use a Project API Key"


class ProjectError(Exception):
    """A project-scoped call made with a key that has no project."""


# The real client's message for a str where a Path or a file object is wanted.
STR_NOT_SUPPORTED = "Loading from string is not supported"


def _stream(file: Any) -> IO[bytes]:
    """A readable byte stream from a ``Path`` or a file object, as the real client's
    ``_file.load``: a ``str`` is ``NotImplementedError`` and anything else (a DataFrame among
    them) ``ValueError``. ``qcogclient.qcog.adapters.load_dataframe`` turns a DataFrame into a
    stream."""
    if isinstance(file, str):
        raise NotImplementedError(STR_NOT_SUPPORTED)
    if isinstance(file, Path):
        path = file
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        stream = io.BytesIO(path.read_bytes())
        stream.name = path.name
        return stream
    if hasattr(file, "read"):
        return file
    raise ValueError("Invalid file type")


class ProjectClient(Initializer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._whoami: dict[str, Any] | None = None

    async def whoami(self) -> DictResponse:
        if self._whoami is None:
            result = await self.http_client.exec("/whoami", "GET")
            if is_error(result):
                return result
            self._whoami = result["response"]
        return {"response": self._whoami}

    async def project_id(self) -> str:
        """The key's project id; raises ``ProjectError`` when the key has none."""
        who = await self.whoami()
        project = None if is_error(who) else who["response"].get("project_id")
        if not project:
            raise ProjectError(NO_PROJECT if not is_error(who) else str(who["error"]))
        return str(project)

    async def _project_path(self) -> str:
        return f"/projects/{await self.project_id()}"

    async def create_dataset(
        self,
        *,
        name: str,
        dataset_location: str,
        credentials: dict[str, Any] | None,
        dataset_format: str = "csv",
        conf_name: str = "modal",
        conf_version: str = "0.0.1",
    ) -> DictResponse:
        try:
            path = await self._project_path()
        except ProjectError as error:
            return {"error": str(error)}
        body = {
            "name": name,
            "configuration": {
                "conf_name": conf_name,
                "conf_version": conf_version,
                "dataset_location": dataset_location,
                "dataset_format": dataset_format,
                "credentials": credentials,
            },
        }
        return await self.http_client.exec(f"{path}/datasets", "POST", body)

    async def list_datasets(self, *, limit: int = 100, skip: int = 0) -> DictResponse:
        try:
            path = await self._project_path()
        except ProjectError as error:
            return {"error": str(error)}
        # As the real client does: the page goes in a JSON body on a GET.
        return await self.http_client.exec(
            f"{path}/datasets", "GET", {"limit": limit, "skip": skip}
        )

    async def get_dataset(
        self, *, dataset_id: str, identifier: Literal["id", "name"] = "id", load: bool = False
    ) -> DictResponse:
        try:
            path = await self._project_path()
        except ProjectError as error:
            return {"error": str(error)}
        return await self.http_client.exec(
            f"{path}/datasets/{dataset_id}", "GET", params={"identifier": identifier}
        )

    async def upload_dataset(
        self,
        file: Any,
        name: str,
        *,
        description: str | None = None,
        format: str = "csv",
        configuration_version: str = "0.0.1",
        override: bool = False,
        chunk_size: int = 256,
    ) -> DictResponse:
        """Upload a CSV from a ``Path`` or a file object (see ``_stream``)."""
        stream = _stream(file)
        try:
            path = await self._project_path()
        except ProjectError as error:
            return {"error": str(error)}
        params = {
            "name": name,
            "format": format,
            "configuration_version": configuration_version,
            "override": str(override),
            "chunk_size": chunk_size * 1024 * 1024,  # MB, as the real client sends it
            "description": description,
        }
        return await self.http_client.upload_file(f"{path}/datasets/upload", stream, params)

    async def delete_run(
        self, *, run_id: str, identifier: Literal["id", "name"] = "id"
    ) -> DictResponse:
        try:
            path = await self._project_path()
        except ProjectError as error:
            return {"error": str(error)}
        params = {"identifier": "name"} if identifier == "name" else None
        return await self.http_client.exec(
            f"{path}/experiment_runs/{run_id}", "DELETE", params=params
        )
