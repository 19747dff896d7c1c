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
        self.records = shared.records

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
        self.records.experiments.put(experiment)
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
            self.records.environments,
            environment,
            f"An environment named '{name}' already exists.",
        )
        return environment

    def list_environments(self, limit: int, offset: int, instance: str | None) -> list[Environment]:
        if instance not in (None, "cpu", "gpu"):
            raise Invalid("instance: must be 'cpu' or 'gpu' (or absent for both).")
        found = self.records.environments.all()
        return page([e for e in found if instance in (None, e.instance)], limit, offset)

    def get_environment(self, value: str, identifier: str) -> Environment:
        return self.shared.lookup(self.records.environments, "Environment", value, identifier)

    def create_environment(self, body: EnvironmentCreate) -> Environment:
        name = check_name("name", body.name)
        if self.records.environments.find(name) is not None:
            raise Conflict(f"An environment named '{name}' already exists.")
        image = str(body.configuration.get("docker_image", ""))
        instance: Literal["cpu", "gpu"] = "gpu" if "cuda" in (name + image).lower() else "cpu"
        return self._put_environment(
            name, instance, body.description, body.configuration, body.metadata or {}
        )

    def delete_environment(self, value: str, identifier: str) -> Deleted:
        environment = self.get_environment(value, identifier)
        users = [r.name for r in self.records.runs.all(where=("environment_id", environment.id))]
        if users:
            raise Conflict(f"Environment '{environment.name}' is used by runs {users[:5]}.")
        self.records.environments.delete(environment.id)
        return Deleted(deleted=True, id=environment.id, name=environment.name)

    # Experiments ----------------------------------------------------------------------------

    def list_experiments(self, limit: int, offset: int) -> list[Experiment]:
        return page(self.records.experiments.all(), limit, offset)

    def get_experiment(self, value: str, identifier: str) -> Experiment:
        return self.shared.lookup(self.records.experiments, "Experiment", value, identifier)

    def create_experiment(self, body: ExperimentCreate) -> Experiment:
        name = check_name("name", body.name)
        if self.records.experiments.find(name) is not None:
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
            self.records.experiments, experiment, f"An experiment named '{name}' already exists."
        )
        return experiment
