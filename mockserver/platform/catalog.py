"""What runs are made of: execution environments and experiments."""

from __future__ import annotations

from typing import Any, Literal

from qcog_mock.mockserver.documents import Environment, Experiment
from qcog_mock.mockserver.errors import Conflict, Invalid
from qcog_mock.mockserver.platform.shared import Shared, check_name, page
from qcog_mock.mockserver.schemas import Deleted, EnvironmentCreate, ExperimentCreate

SEED_EXPERIMENT = "pytorch-models"
SEED_ENVIRONMENTS: tuple[tuple[str, Literal["cpu", "gpu"], str], ...] = (
    ("python3.12", "cpu", "Basic Python environment with no GPU support"),
    ("py3.12-cuda", "gpu", "Python 3.12 with CUDA support"),
)


class Catalog:
    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.store = shared.store

    def seed(self) -> None:
        """The experiment and environments that the documented examples assume."""
        now = self.shared.now()
        experiment = Experiment(
            id=self.shared.new_id(),
            name=SEED_EXPERIMENT,
            description="PyTorch implementations of QCML Hilbert Space Models",
            file_path="experiments/pytorch-models.zip",
            format="zip",
            created_ts=now,
            updated_ts=now,
        )
        self.store.put("experiment", experiment.to_doc())
        for name, instance, description in SEED_ENVIRONMENTS:
            self._put_environment(name, instance, description, {}, {})

    # Environments ---------------------------------------------------------------------------

    def _put_environment(
        self,
        name: str,
        instance: Literal["cpu", "gpu"],
        description: str | None,
        configuration: dict[str, Any],
        metadata: dict[str, Any],
    ) -> Environment:
        now = self.shared.now()
        environment = Environment(
            id=self.shared.new_id(),
            name=name,
            description=description,
            instance=instance,
            image_id=configuration.get("docker_image"),
            configuration=configuration,
            metadata=metadata,
            created_ts=now,
            updated_ts=now,
        )
        self.shared.insert(
            "environment", environment.to_doc(), f"An environment named '{name}' already exists."
        )
        return environment

    def list_environments(self, limit: int, offset: int, instance: str | None) -> list[Environment]:
        if instance not in (None, "cpu", "gpu"):
            raise Invalid("instance: must be 'cpu' or 'gpu' (or absent for both).")
        found = [Environment.from_doc(e) for e in self.store.documents("environment")]
        return page([e for e in found if instance in (None, e.instance)], limit, offset)

    def get_environment(self, value: str, identifier: str) -> Environment:
        doc = self.shared.lookup("environment", "Environment", value, identifier)
        return Environment.from_doc(doc)

    def create_environment(self, body: EnvironmentCreate) -> Environment:
        name = check_name("name", body.name)
        if self.store.find("environment", name) is not None:
            raise Conflict(f"An environment named '{name}' already exists.")
        image = str(body.configuration.get("docker_image", ""))
        instance: Literal["cpu", "gpu"] = "gpu" if "cuda" in (name + image).lower() else "cpu"
        return self._put_environment(
            name, instance, body.description, body.configuration, body.metadata or {}
        )

    def delete_environment(self, value: str, identifier: str) -> Deleted:
        environment = self.get_environment(value, identifier)
        users = [
            r["name"] for r in self.store.documents("run") if r["environment_id"] == environment.id
        ]
        if users:
            raise Conflict(f"Environment '{environment.name}' is used by runs {users[:5]}.")
        self.store.delete("environment", environment.id)
        return Deleted(deleted=True, id=environment.id, name=environment.name)

    # Experiments ----------------------------------------------------------------------------

    def list_experiments(self, limit: int, offset: int) -> list[Experiment]:
        docs = page(self.store.documents("experiment"), limit, offset)
        return [Experiment.from_doc(doc) for doc in docs]

    def get_experiment(self, value: str, identifier: str) -> Experiment:
        doc = self.shared.lookup("experiment", "Experiment", value, identifier)
        return Experiment.from_doc(doc)

    def create_experiment(self, body: ExperimentCreate) -> Experiment:
        name = check_name("name", body.name)
        if self.store.find("experiment", name) is not None:
            raise Conflict(f"An experiment named '{name}' already exists.")
        now = self.shared.now()
        experiment = Experiment(
            id=self.shared.new_id(),
            name=name,
            description=body.description,
            file_path=body.file_path,
            format=body.format,
            created_ts=now,
            updated_ts=now,
        )
        self.shared.insert(
            "experiment", experiment.to_doc(), f"An experiment named '{name}' already exists."
        )
        return experiment
