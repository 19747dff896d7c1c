"""What runs are made of: execution environments and experiments."""

from __future__ import annotations

from typing import Any

from qcog_mock.mockserver.errors import Conflict, Invalid
from qcog_mock.mockserver.platform.shared import Shared, check_name, page

SEED_EXPERIMENT = "pytorch-models"
SEED_ENVIRONMENTS = (
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
        self.store.put(
            "experiment",
            {
                "id": self.shared.new_id(),
                "name": SEED_EXPERIMENT,
                "description": "PyTorch implementations of QCML Hilbert Space Models",
                "file_path": "experiments/pytorch-models.zip",
                "format": "zip",
                "created_ts": now,
                "updated_ts": now,
            },
        )
        for name, instance, description in SEED_ENVIRONMENTS:
            self._put_environment(name, instance, description, {}, {})

    # Environments ---------------------------------------------------------------------------

    def _put_environment(
        self,
        name: str,
        instance: str,
        description: str | None,
        configuration: dict[str, Any],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        now = self.shared.now()
        doc = {
            "id": self.shared.new_id(),
            "name": name,
            "description": description,
            "instance": instance,
            "image_id": configuration.get("docker_image"),
            "configuration": configuration,
            "metadata": metadata,
            "created_ts": now,
            "updated_ts": now,
        }
        self.shared.insert("environment", doc, f"An environment named '{name}' already exists.")
        return doc

    def list_environments(self, limit: int, offset: int, instance: str | None) -> list[Any]:
        if instance not in (None, "cpu", "gpu"):
            raise Invalid("instance: must be 'cpu' or 'gpu' (or absent for both).")
        found = [
            e for e in self.store.documents("environment") if instance in (None, e["instance"])
        ]
        return page(found, limit, offset)

    def get_environment(self, value: str, identifier: str) -> dict[str, Any]:
        return self.shared.lookup("environment", "Environment", value, identifier)

    def create_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        name = check_name("name", body.get("name"))
        if self.store.find("environment", name) is not None:
            raise Conflict(f"An environment named '{name}' already exists.")
        configuration = body.get("configuration") or {}
        image = str(configuration.get("docker_image", ""))
        instance = "gpu" if "cuda" in (name + image).lower() else "cpu"
        return self._put_environment(
            name, instance, body.get("description"), configuration, body.get("metadata") or {}
        )

    def delete_environment(self, value: str, identifier: str) -> dict[str, Any]:
        environment = self.get_environment(value, identifier)
        users = [
            r["name"]
            for r in self.store.documents("run")
            if r["environment_id"] == environment["id"]
        ]
        if users:
            raise Conflict(f"Environment '{environment['name']}' is used by runs {users[:5]}.")
        self.store.delete("environment", environment["id"])
        return {"deleted": True, "id": environment["id"], "name": environment["name"]}

    # Experiments ----------------------------------------------------------------------------

    def list_experiments(self, limit: int, offset: int) -> list[dict[str, Any]]:
        return page(self.store.documents("experiment"), limit, offset)

    def get_experiment(self, value: str, identifier: str) -> dict[str, Any]:
        return self.shared.lookup("experiment", "Experiment", value, identifier)

    def create_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        name = check_name("name", body.get("name"))
        if self.store.find("experiment", name) is not None:
            raise Conflict(f"An experiment named '{name}' already exists.")
        now = self.shared.now()
        doc = {
            "id": self.shared.new_id(),
            "name": name,
            "description": body.get("description"),
            "file_path": body.get("file_path"),
            "format": body.get("format", "zip"),
            "created_ts": now,
            "updated_ts": now,
        }
        self.shared.insert("experiment", doc, f"An experiment named '{name}' already exists.")
        return doc
