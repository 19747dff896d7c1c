"""Datasets of a project: uploads, local files, replacement."""

from __future__ import annotations

from typing import Any, BinaryIO

from qcog_mock.mockserver import s3
from qcog_mock.mockserver.documents import Dataset
from qcog_mock.mockserver.errors import Conflict, Invalid
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
        credentials = configuration.pop("credentials", None)  # kept apart: see _keep
        field = "configuration.dataset_location"
        location = str(configuration.get("dataset_location") or "")
        if not location:
            raise Invalid(f"{field}: required (s3://bucket/key, a local path or a file:// URL).")
        if str(configuration.get("dataset_format", "csv")).lower() != "csv":
            raise Invalid("configuration.dataset_format: only 'csv' is supported.")
        if s3.is_s3(location) and self.shared.settings.s3_root is None:
            s3.parse(location, field)
            self.shared.replaceable(self.datasets, "Dataset", project_id, name, body.override)
            return self._reference(project_id, name, body, configuration, credentials)
        source = self.shared.local_file(location, field)
        self.shared.replaceable(self.datasets, "Dataset", project_id, name, body.override)
        with source.open("rb") as stream:
            dataset = self._receive(
                project_id, name, body.description, configuration, stream, body.override
            )
        self._keep(dataset, credentials)
        return dataset

    def _reference(
        self,
        project_id: str,
        name: str,
        body: DatasetCreate,
        configuration: dict[str, Any],
        credentials: Any,
    ) -> Dataset:
        """An S3 object the server cannot read, stored as the platform stores it: a run on it
        fails at once, saying so (the engine's ``_job``)."""
        now = self.shared.now()
        dataset = Dataset(
            id=self.shared.new_id(), name=name, description=body.description,
            project_id=project_id, configuration=configuration, number_of_rows=None,
            number_of_columns=None, columns=[], created_at=now, updated_at=now,
        )  # fmt: skip
        self._store(dataset, body.override)
        self._keep(dataset, credentials)
        return dataset

    def _keep(self, dataset: Dataset, credentials: Any) -> None:
        if isinstance(credentials, dict) and credentials:
            self.shared.files.keep_credentials(dataset.id, credentials)

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
        self._store(dataset, override)
        return dataset

    def _store(self, dataset: Dataset, override: bool) -> None:
        # Checked again as the document is written: another upload of the name may have landed
        # while this one was received. The file of a replaced dataset stays: runs that trained
        # on it keep their data.
        with self.shared.lock, self.shared.store.transaction():
            current = self.datasets.find(dataset.name, dataset.project_id)
            if current is not None and not override:
                self.shared.files.dataset(dataset.id).unlink(missing_ok=True)
                raise Conflict(taken("Dataset", dataset.name))
            if current is not None:
                self.datasets.delete(current.id)
            self.datasets.insert(dataset)
