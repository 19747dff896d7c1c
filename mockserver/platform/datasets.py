"""Datasets of a project: uploads, local files, replacement."""

from __future__ import annotations

from typing import Any, BinaryIO

from qcog_mock.mockserver.documents import Dataset
from qcog_mock.mockserver.errors import BadRequest, Conflict, Invalid
from qcog_mock.mockserver.platform.shared import Shared, check_name, page, taken
from qcog_mock.mockserver.schemas import DatasetCreate


class Datasets:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.datasets = shared.records.datasets

    def page(self, project_id: str, limit: int, skip: int) -> list[Dataset]:
        return page(self.datasets.all(project_id), limit, skip)

    def get(self, project_id: str, value: str, identifier: str) -> Dataset:
        return self.shared.lookup(self.datasets, "Dataset", value, identifier, project_id)

    def upload(
        self,
        project_id: str,
        name: str,
        stream: BinaryIO,
        *,
        format: str = "csv",
        override: bool = False,
        description: str | None = None,
        configuration_version: str = "0.0.1",
    ) -> Dataset:
        check_name("name", name)
        if format.lower() != "csv":
            raise Invalid(f"format: '{format}' is not supported; upload a CSV file (format=csv).")
        # Refused before the upload is read, when the name is already taken; checked again at
        # the write.
        self.shared.replaceable(self.datasets, "Dataset", project_id, name, override)
        configuration = {
            "conf_name": "upload",
            "conf_version": configuration_version,
            "dataset_location": f"upload://{name}",
            "dataset_format": "csv",
        }
        return self._receive(project_id, name, description, configuration, stream, override)

    def create(self, project_id: str, body: DatasetCreate) -> Dataset:
        name = check_name("name", body.name)
        configuration = dict(body.configuration)
        # Older clients send provider/version instead of conf_name/conf_version.
        configuration.setdefault("conf_name", configuration.pop("provider", "modal"))
        configuration.setdefault("conf_version", configuration.pop("version", "0.0.1"))
        configuration.pop("credentials", None)  # never stored
        location = str(configuration.get("dataset_location") or "")
        if not location:
            raise Invalid("configuration.dataset_location: required (a local path or file:// URL).")
        if location.startswith("s3://"):
            raise BadRequest(
                f"configuration.dataset_location: S3 locations ('{location}') are not available "
                "offline in qcog-mock; upload the file instead (ProjectClient.upload_dataset)."
            )
        if str(configuration.get("dataset_format", "csv")).lower() != "csv":
            raise Invalid("configuration.dataset_format: only 'csv' is supported.")
        source = self.shared.local_file(location, "configuration.dataset_location")
        self.shared.replaceable(self.datasets, "Dataset", project_id, name, body.override)
        with source.open("rb") as stream:
            return self._receive(
                project_id, name, body.description, configuration, stream, body.override
            )

    def _receive(
        self,
        project_id: str,
        name: str,
        description: str | None,
        configuration: dict[str, Any],
        stream: BinaryIO,
        override: bool,
    ) -> Dataset:
        dataset_id = self.shared.new_id()
        files = self.shared.files
        shape = files.receive_dataset(dataset_id, stream, self.shared.settings.max_upload_bytes)
        now = self.shared.now()
        dataset = Dataset(
            id=dataset_id,
            name=name,
            description=description,
            project_id=project_id,
            configuration=configuration,
            number_of_rows=shape.rows,
            number_of_columns=len(shape.columns),
            columns=shape.columns,
            created_at=now,
            updated_at=now,
            format="csv",
            size_bytes=files.dataset(dataset_id).stat().st_size,
        )
        # Checked again as the document is written: another upload of the name may have landed
        # while this one was received. The file of a replaced dataset stays: runs that trained
        # on it keep their data.
        with self.shared.lock, self.shared.store.transaction():
            current = self.datasets.find(name, project_id)
            if current is not None and not override:
                files.dataset(dataset_id).unlink(missing_ok=True)
                raise Conflict(taken("Dataset", name))
            if current is not None:
                self.datasets.delete(current.id)
            self.datasets.insert(dataset)
        return dataset
