"""The emulated platform: its resources and rules, apart from HTTP.

``PlatformBackend`` holds the store, the files, the simulated clock and the run engine, and offers
one method per API operation. It raises ``mockserver.errors`` exceptions, never HTTP ones.
Documents are plain dicts (persisted as JSON); ``identifier="name"`` lookups are the main path, as
in the platform guides.
"""

from __future__ import annotations

import base64
import csv
import logging
import math
import re
import secrets
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import torch

from qcog_mock.mockserver.clock import LATEST, SimulatedClock, isoformat, parse_time
from qcog_mock.mockserver.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.jobs import TERMINAL, Jobs, runtime_limit, runtime_seconds
from qcog_mock.mockserver.runparams import GPU_TYPES, RunParams, parse_faults, validate_params
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.simulation import Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.mockserver.webhooks import (
    Webhooks,
    check_secret,
    check_url,
    new_secret,
    public_delivery,
)
from qcog_mock.trainer import ExperimentError, predict

logger = logging.getLogger(__name__)

SEMVER = re.compile(r"v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?")
_OPERATORS = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


def select_checkpoint(checkpoints: list[dict[str, Any]], criterion: Any) -> dict[str, Any]:
    """The checkpoint a criterion picks: ``smallest``/``greatest`` (or ``largest``) metric, ties to
    the latest; or, with an operator and a number, the latest checkpoint satisfying it."""
    if not isinstance(criterion, dict) or "metric" not in criterion:
        raise Invalid(
            "criterion: give checkpoint_name, or a criterion {metric, value[, operator]}."
        )
    metric, value, operator = criterion["metric"], criterion.get("value"), criterion.get("operator")
    scored = [c for c in checkpoints if metric in (c.get("metrics") or {})]
    if checkpoints and not scored:
        available = sorted(checkpoints[-1].get("metrics") or {})
        raise Invalid(f"criterion.metric: '{metric}' is not a checkpoint metric; use {available}.")
    if operator is None and value in ("smallest", "greatest", "largest"):
        if not scored:
            raise NotFound("Checkpoint", f"{metric} {value}", by="criterion")
        sign = 1 if value == "smallest" else -1
        return min(reversed(scored), key=lambda c: sign * c["metrics"][metric])
    if operator not in _OPERATORS or isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(
            "criterion: value is 'smallest' or 'greatest', or a number with an operator among "
            f"{sorted(_OPERATORS)}."
        )
    matching = [c for c in scored if _OPERATORS[operator](c["metrics"][metric], value)]
    if not matching:
        raise NotFound("Checkpoint", f"{metric} {operator} {value}", by="criterion")
    return matching[-1]


_ID_NAMESPACE = uuid.UUID("5d3f2c9e-7a51-4c47-9a0e-1c2b3d4e5f60")
SEED_PROJECT = "qcog-mock"
SEED_EXPERIMENT = "pytorch-models"
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, the project of their key (if any), and whether they are admin."""

    user: dict[str, Any]
    project_id: str | None
    admin: bool

    def project(self, project_id: str) -> None:
        if not self.admin and project_id != self.project_id:
            raise Forbidden(f"This API key has no access to project '{project_id}'.")


def _check_name(field: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid(f"{field}: a non-empty name is required.")
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(f"{field}: at most {MAX_NAME_LENGTH} characters.")
    if any(ord(c) < 32 for c in name):
        raise Invalid(f"{field}: control characters are not allowed in names.")
    return name


def _page(items: list[Any], limit: int, skip: int) -> list[Any]:
    if limit < 0 or skip < 0:
        raise Invalid("limit and skip (offset) must be 0 or more.")
    return items[skip : skip + limit]


class PlatformBackend:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._lock = threading.RLock()
        self._deployed: dict[tuple[str, str], dict[str, Any]] = {}
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        if self.settings.data_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="qcog-mock-")
            root, database = Path(self._scratch.name), ":memory:"
        else:
            root = Path(self.settings.data_dir)
            root.mkdir(parents=True, exist_ok=True)
            database = str(root / "qcog-mock.sqlite3")
        self.store = Store(database)
        self.files = Files(root)
        torch.set_num_threads(self.settings.torch_threads)
        restarted = self.store.setting("seeded") is not None
        self._start_engine()
        self._seed()
        if restarted:
            self.emit("platform.restarted")
        self.jobs.recover()
        self.webhooks.recover()

    # Engine --------------------------------------------------------------------------------

    def _start_engine(self) -> None:
        saved = self.store.setting("clock")
        now = saved["now"] if saved else self.settings.start_time
        mode = saved["mode"] if saved else self.settings.clock
        speed = saved["speed"] if saved else self.settings.speed
        self.clock = SimulatedClock(now, mode, speed)
        self.sim = Simulation(self.clock)
        self.sim.on_time_change = lambda _: self._save_clock()
        self.jobs = Jobs(self.store, self.sim, self.files, self.settings, self.emit)
        s = self.settings
        secret = s.webhook_secret or self.store.setting("webhook_secret") or new_secret()
        self.store.set_setting("webhook_secret", check_secret(secret))
        endpoints = list(self.store.setting("webhook_endpoints") or [])
        for url in s.webhook_urls:
            check_url(url, allow_remote=s.allow_remote_webhooks, field="--webhook-url")
            if url not in endpoints:
                endpoints.append(url)
        self.store.set_setting("webhook_endpoints", endpoints)
        self.webhooks = Webhooks(
            self.store,
            self.sim,
            secret=secret,
            endpoints=endpoints,
            checkpoints=s.webhook_checkpoints,
            timeout=s.webhook_timeout,
            faults_for=self._faults_for,
            on_fault=lambda run_id, fault, where: self.jobs.fault(run_id, fault, **where),
        )
        self.jobs.server_faults = parse_faults(self.store.setting("faults") or [])

    def _save_clock(self) -> None:
        self.store.set_setting(
            "clock", {"now": self.clock.now(), "mode": self.clock.mode, "speed": self.clock.speed}
        )

    def close(self) -> None:
        self.sim.close()
        self.jobs.close()
        self.webhooks.close()
        self.store.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    def reset(self) -> None:
        """Back to the seed state: every resource, file, event and the clock."""
        self.sim.close()
        self.jobs.close()
        self.webhooks.close()
        self.store.clear()
        self.files.clear()
        self._start_engine()
        self._seed()

    # Identity ------------------------------------------------------------------------------

    def _new_id(self) -> str:
        with self._lock:
            counter = int(self.store.setting("id_counter") or 0) + 1
            self.store.set_setting("id_counter", counter)
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.settings.seed}:{counter}"))

    def _now(self) -> str:
        return isoformat(self.clock.now())

    def emit(self, type_: str, run: dict[str, Any] | None = None, **data: Any) -> None:
        """Append to the event timeline at the current simulated time."""
        now = self.clock.now()
        body: dict[str, Any] = {"time": isoformat(now), "type": type_}
        if run is not None:
            body.update(run_id=run["id"], run_name=run["name"], status=run["status"])
        body.update(data)
        seq = self.store.add_event(now, type_, run["id"] if run else None, body)
        self.webhooks.enqueue(seq, body, run)

    # Seed data -----------------------------------------------------------------------------

    def _seed(self) -> None:
        s = self.settings
        if self.store.setting("seeded") is None:
            now = self._now()
            user = {
                "id": self._new_id(),
                "name": "qcog-mock user",
                "email": "user@qcog-mock.local",
                "system_role": "admin",
                "created_at": now,
            }
            self.store.put("user", user)
            project = {
                "id": self._new_id(),
                "name": SEED_PROJECT,
                "description": "The emulator's default project",
                "allowed_gpus": list(GPU_TYPES),
                "created_at": now,
                "updated_at": now,
            }
            self.store.put("project", project)
            self._link(user["id"], project["id"], "owner")
            self.store.put(
                "experiment",
                {
                    "id": self._new_id(),
                    "name": SEED_EXPERIMENT,
                    "description": "PyTorch implementations of QCML Hilbert Space Models",
                    "file_path": "experiments/pytorch-models.zip",
                    "format": "zip",
                    "created_ts": now,
                    "updated_ts": now,
                },
            )
            for name, instance, description in (
                ("python3.12", "cpu", "Basic Python environment with no GPU support"),
                ("py3.12-cuda", "gpu", "Python 3.12 with CUDA support"),
            ):
                self._put_environment(name, instance, description, {}, {})
            self.store.set_setting("seed_user", user["id"])
            self.store.set_setting("seed_project", project["id"])
            self.store.set_setting("seeded", True)
        # The configured key always works, also after a restart with another QCOG_API_KEY.
        if self.store.find("api_key", s.api_key) is None:
            self._put_key(
                s.api_key, self.store.setting("seed_user"), self.store.setting("seed_project")
            )

    def _put_key(self, key: str, user_id: str, project_id: str | None) -> dict[str, Any]:
        doc = {
            "id": self._new_id(),
            "name": key,
            "x_api_key": key,
            "user_id": user_id,
            "project_id": project_id,
            "created_at": self._now(),
        }
        self.store.put("api_key", doc)
        return doc

    def _link(self, user_id: str, project_id: str, role: str) -> dict[str, Any]:
        doc = {
            "id": self._new_id(),
            "name": f"{user_id}:{project_id}",
            "user_id": user_id,
            "project_id": project_id,
            "role": role,
            "created_at": self._now(),
        }
        self.store.put("user_project", doc)
        return doc

    # Authentication ------------------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Principal:
        hint = "send the header 'Authorization: x-api-key <key>'"
        if not authorization:
            raise Unauthorized(f"Missing API key: {hint}.")
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() == "x-api-key" and credential.strip():
            key = self.store.find("api_key", credential.strip())
            if key is None:
                raise Unauthorized(f"Invalid API key: {hint} with a key this server knows.")
            user = self.store.get("user", key["user_id"]) or {}
            return Principal(user, key["project_id"], user.get("system_role") == "admin")
        if scheme.lower() == "basic":
            try:
                username, _, password = base64.b64decode(credential).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise Unauthorized("Malformed basic credentials.") from None
            s = self.settings
            if secrets.compare_digest(username, s.admin_username) and secrets.compare_digest(
                password, s.admin_password
            ):
                return Principal(self.admin_user(), None, True)
            raise Unauthorized("Invalid basic credentials.")
        raise Unauthorized(f"Invalid authorization scheme: {hint}.")

    def whoami(self, principal: Principal) -> dict[str, Any]:
        project = self.store.get("project", principal.project_id) if principal.project_id else None
        datasets = (
            [
                {"id": d["id"], "name": d["name"], "description": d["description"]}
                for d in self.store.list("dataset", project["id"])
            ]
            if project
            else []
        )
        return {
            "user_id": principal.user.get("id"),
            "user_name": principal.user.get("name"),
            "project_id": project["id"] if project else None,
            "project_name": project["name"] if project else None,
            "system_permissions": ["system.read", "system.write"] if principal.admin else [],
            "project_permissions": (
                ["project.admin", "dataset.read", "dataset.write", "run.read", "run.write"]
                if project
                else []
            ),
            "datasets": datasets,
        }

    # Users, projects, keys -----------------------------------------------------------------

    def admin_user(self) -> dict[str, Any]:
        found = self.store.find("user", f"admin:{self.settings.admin_username}")
        if found is None:
            found = {
                "id": self._new_id(),
                "name": f"admin:{self.settings.admin_username}",
                "email": f"{self.settings.admin_username}@qcog-mock.local",
                "system_role": "admin",
                "created_at": self._now(),
            }
            self.store.put("user", found)
        return found

    def create_user(self, email: str, name: str, system_role: str) -> dict[str, Any]:
        _check_name("email", email)
        _check_name("name", name)
        if system_role not in ("admin", "user"):
            raise Invalid("system_role: must be 'admin' or 'user'.")
        if any(u["email"] == email for u in self.store.list("user")):
            raise Conflict(f"A user with email '{email}' already exists.")
        user = {
            "id": self._new_id(),
            "name": name,
            "email": email,
            "system_role": system_role,
            "created_at": self._now(),
        }
        if self.store.find("user", name) is not None:
            raise Conflict(f"A user named '{name}' already exists.")
        self.store.put("user", user)
        return user

    def user_by_email(self, email: str) -> dict[str, Any]:
        for user in self.store.list("user"):
            if user["email"] == email:
                return user
        raise NotFound("User", email, by="email")

    def list_projects(self, limit: int, offset: int) -> list[dict[str, Any]]:
        return _page(self.store.list("project"), limit, offset)

    def project_by_name(self, name: str) -> dict[str, Any]:
        found = self.store.find("project", name)
        if found is None:
            raise NotFound("Project", name, by="name")
        return found

    def get_project(self, project_id: str) -> dict[str, Any]:
        found = self.store.get("project", project_id)
        if found is None:
            raise NotFound("Project", project_id)
        return found

    def create_project(
        self, name: str, description: str | None, members: list[dict[str, Any]]
    ) -> dict[str, Any]:
        _check_name("name", name)
        if self.store.find("project", name) is not None:
            raise Conflict(f"A project named '{name}' already exists.")
        now = self._now()
        project = {
            "id": self._new_id(),
            "name": name,
            "description": description,
            "allowed_gpus": [],
            "created_at": now,
            "updated_at": now,
        }
        for member in members:
            if self.store.get("user", member.get("user_id", "")) is None:
                raise NotFound("User", str(member.get("user_id")))
        self.store.put("project", project)
        for member in members:
            self._link(member["user_id"], project["id"], member.get("project_role", "owner"))
        return project

    def update_project(self, project_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        project = self.get_project(project_id)
        if changes.get("allowed_gpus") is not None:
            gpus = changes["allowed_gpus"]
            unknown = [g for g in gpus if g not in GPU_TYPES]
            if unknown:
                raise Invalid(
                    f"allowed_gpus: unknown GPU type(s) {unknown}; use {list(GPU_TYPES)}."
                )
            project["allowed_gpus"] = list(dict.fromkeys(gpus))
        if changes.get("description") is not None:
            project["description"] = changes["description"]
        project["updated_at"] = self._now()
        self.store.put("project", project)
        return project

    def create_api_key(self, user_id: str, project_id: str | None) -> dict[str, Any]:
        if self.store.get("user", user_id) is None:
            raise NotFound("User", user_id)
        if project_id is not None:
            self.get_project(project_id)
        return self._put_key(f"qcog-mock-{secrets.token_hex(16)}", user_id, project_id)

    def add_user_to_project(self, user_id: str, project_id: str, role: str) -> dict[str, Any]:
        if role not in ("viewer", "contributor", "owner"):
            raise Invalid("role: must be 'viewer', 'contributor' or 'owner'.")
        if self.store.get("user", user_id) is None:
            raise NotFound("User", user_id)
        self.get_project(project_id)
        if self.store.find("user_project", f"{user_id}:{project_id}") is not None:
            raise Conflict(f"User '{user_id}' is already in project '{project_id}'.")
        return self._link(user_id, project_id, role)

    # Environments and experiments ----------------------------------------------------------

    def _put_environment(
        self,
        name: str,
        instance: str,
        description: str | None,
        configuration: dict[str, Any],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        now = self._now()
        doc = {
            "id": self._new_id(),
            "name": name,
            "description": description,
            "instance": instance,
            "image_id": configuration.get("docker_image"),
            "configuration": configuration,
            "metadata": metadata,
            "created_ts": now,
            "updated_ts": now,
        }
        self.store.put("environment", doc)
        return doc

    def list_environments(self, limit: int, offset: int, instance: str | None) -> list[Any]:
        if instance not in (None, "cpu", "gpu"):
            raise Invalid("instance: must be 'cpu' or 'gpu' (or absent for both).")
        found = [e for e in self.store.list("environment") if instance in (None, e["instance"])]
        return _page(found, limit, offset)

    def _lookup(self, kind: str, label: str, value: str, identifier: str, scope: str = "") -> Any:
        if identifier not in ("id", "name"):
            raise Invalid("identifier: must be 'id' or 'name'.")
        if identifier == "name":
            found = self.store.find(kind, value, scope)
        else:
            found = self.store.get(kind, value)
            if found is not None and scope and self._scope_of(kind, found) != scope:
                found = None
        if found is None:
            raise NotFound(label, value, by=identifier)
        return found

    @staticmethod
    def _scope_of(kind: str, doc: dict[str, Any]) -> str:
        if kind == "deployment":
            return doc.get("run_id", "")
        return doc.get("project_id", "") if kind in ("dataset", "run") else ""

    def get_environment(self, value: str, identifier: str) -> dict[str, Any]:
        return self._lookup("environment", "Environment", value, identifier)

    def create_environment(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _check_name("name", body.get("name"))
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
            r["name"] for r in self.store.list("run") if r["environment_id"] == environment["id"]
        ]
        if users:
            raise Conflict(f"Environment '{environment['name']}' is used by runs {users[:5]}.")
        self.store.delete("environment", environment["id"])
        return {"deleted": True, "id": environment["id"], "name": environment["name"]}

    def list_experiments(self, limit: int, offset: int) -> list[dict[str, Any]]:
        return _page(self.store.list("experiment"), limit, offset)

    def get_experiment(self, value: str, identifier: str) -> dict[str, Any]:
        return self._lookup("experiment", "Experiment", value, identifier)

    def create_experiment(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _check_name("name", body.get("name"))
        if self.store.find("experiment", name) is not None:
            raise Conflict(f"An experiment named '{name}' already exists.")
        now = self._now()
        doc = {
            "id": self._new_id(),
            "name": name,
            "description": body.get("description"),
            "file_path": body.get("file_path"),
            "format": body.get("format", "zip"),
            "created_ts": now,
            "updated_ts": now,
        }
        self.store.put("experiment", doc)
        return doc

    # Datasets ------------------------------------------------------------------------------

    def list_datasets(self, project_id: str, limit: int, skip: int) -> list[dict[str, Any]]:
        return _page(self.store.list("dataset", project_id), limit, skip)

    def get_dataset(self, project_id: str, value: str, identifier: str) -> dict[str, Any]:
        return self._lookup("dataset", "Dataset", value, identifier, project_id)

    def _replaceable(self, kind: str, label: str, project_id: str, name: str, override: bool):
        existing = self.store.find(kind, name, project_id)
        if existing is not None and not override:
            raise Conflict(
                f"{label} '{name}' already exists in this project; pass override=True to "
                "replace it, or choose another name."
            )
        return existing

    def upload_dataset(
        self,
        project_id: str,
        name: str,
        stream: BinaryIO,
        *,
        format: str = "csv",
        override: bool = False,
        description: str | None = None,
        configuration_version: str = "0.0.1",
    ) -> dict[str, Any]:
        _check_name("name", name)
        if format.lower() != "csv":
            raise Invalid(f"format: '{format}' is not supported; upload a CSV file (format=csv).")
        existing = self._replaceable("dataset", "Dataset", project_id, name, override)
        dataset_id, shape = self._receive_csv(stream)
        configuration = {
            "conf_name": "upload",
            "conf_version": configuration_version,
            "dataset_location": f"upload://{name}",
            "dataset_format": "csv",
        }
        return self._put_dataset(
            project_id, dataset_id, name, description, configuration, shape, existing
        )

    def create_dataset(self, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
        name = _check_name("name", body.get("name"))
        configuration = dict(body.get("configuration") or {})
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
        source = Path(location.removeprefix("file://"))
        if not source.is_file():
            raise NotFound("Dataset file", str(source), by="location")
        existing = self._replaceable(
            "dataset", "Dataset", project_id, name, bool(body.get("override"))
        )
        with source.open("rb") as stream:
            dataset_id, shape = self._receive_csv(stream)
        return self._put_dataset(
            project_id, dataset_id, name, body.get("description"), configuration, shape, existing
        )

    def _receive_csv(self, stream: BinaryIO) -> tuple[str, dict[str, Any]]:
        """Store a CSV under a new dataset id and inspect it; nothing is kept if it is bad."""
        dataset_id = self._new_id()
        path = self.files.dataset(dataset_id)
        self._copy_limited(stream, path)
        try:
            return dataset_id, self._inspect_csv(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def _copy_limited(self, stream: BinaryIO, path: Path) -> None:
        limit = self.settings.max_upload_bytes
        written = 0
        with path.open("wb") as out:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    out.close()
                    path.unlink(missing_ok=True)
                    raise PayloadTooLarge(
                        f"file: larger than the upload limit of {limit} bytes "
                        "(qcog-mock serve --max-upload-mb raises it)."
                    )
                out.write(chunk)

    @staticmethod
    def _inspect_csv(path: Path) -> dict[str, Any]:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), None)
        if not header:
            raise Invalid("file: the CSV is empty; it needs a header row and data rows.")
        blank = [i + 1 for i, column in enumerate(header) if not column.strip()]
        if blank:
            raise Invalid(
                f"file: column(s) {blank} have no name. Save the CSV with string headers and "
                "without its index (DataFrame.to_csv(index=False))."
            )
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise Invalid(f"file: duplicate column names {duplicates}.")
        try:
            rows = len(pd.read_csv(path, usecols=[0]))
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            raise Invalid(f"file: not a readable CSV file: {error}") from None
        return {"number_of_rows": rows, "number_of_columns": len(header), "columns": header}

    def _put_dataset(
        self,
        project_id: str,
        dataset_id: str,
        name: str,
        description: str | None,
        configuration: dict[str, Any],
        shape: dict[str, Any],
        replaced: dict[str, Any] | None,
    ) -> dict[str, Any]:
        now = self._now()
        doc = {
            "id": dataset_id,
            "name": name,
            "description": description,
            "project_id": project_id,
            "configuration": configuration,
            "format": "csv",
            **shape,
            "size_bytes": self.files.dataset(dataset_id).stat().st_size,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            if replaced is not None:
                # The old file stays: runs that trained on it keep their data.
                self.store.delete("dataset", replaced["id"])
            self.store.put("dataset", doc, scope=project_id)
        return doc

    # Runs ----------------------------------------------------------------------------------

    def create_run(
        self, project_id: str, body: dict[str, Any], local_webhook_url: str | None
    ) -> dict[str, Any]:
        name = _check_name("name", body.get("name"))
        if local_webhook_url is not None:
            check_url(local_webhook_url, allow_remote=self.settings.allow_remote_webhooks)
        project = self.get_project(project_id)
        for field, kind, label in (
            ("experiment_id", "experiment", "Experiment"),
            ("environment_id", "environment", "Environment"),
        ):
            if self.store.get(kind, str(body.get(field))) is None:
                raise NotFound(label, str(body.get(field)))
        dataset = self.store.get("dataset", str(body.get("dataset_id")))
        if dataset is None or dataset["project_id"] != project_id:
            raise NotFound("Dataset", str(body.get("dataset_id")))
        params, hyperparameters = validate_params(
            body.get("params"),
            max_retries=self.settings.max_retries,
            allowed_gpus=project["allowed_gpus"],
        )
        with self._lock:
            existing = self._replaceable(
                "run", "Experiment run", project_id, name, bool(body.get("override"))
            )
            if existing is not None:
                self._remove_run(existing)
            seq = int(self.store.setting("run_seq") or 0) + 1
            self.store.set_setting("run_seq", seq)
            now = self._now()
            run = {
                "id": self._new_id(),
                "seq": seq,
                "name": name,
                "description": body.get("description"),
                "project_id": project_id,
                "experiment_id": body["experiment_id"],
                "environment_id": body["environment_id"],
                "dataset_id": dataset["id"],
                "params": body["params"],
                "metadata": body.get("metadata") or {},
                "status": "pending",
                "metrics": None,
                "errors": [],
                "local_webhook_url": local_webhook_url,
                "timeout": params.timeout,
                "retries": params.retries,
                "max_attempts": params.retries + 1,
                "attempts": [],
                "current_attempt": None,
                "next_attempt_at": None,
                "next_attempt_at_s": None,
                "created_at": now,
                "updated_at": now,
            }
            self.store.put("run", run, scope=project_id)
            self.emit("run.created", run)
            self.emit("run.pending", run)
            self.jobs.submit(run)
        logger.info("Run %s submitted (%s epochs)", name, hyperparameters.epochs)
        return self.run_view(self._run(run["id"]))

    def _run(self, run_id: str) -> dict[str, Any]:
        run = self.store.get("run", run_id)
        if run is None:
            raise NotFound("Experiment run", run_id)
        return run

    def run_view(self, run: dict[str, Any]) -> dict[str, Any]:
        """The public run object: the document plus derived fields."""
        view = {k: v for k, v in run.items() if k != "seq" and not k.endswith("_s")}
        errors = run.get("errors") or []
        view["errors"] = errors or None
        view["error"] = errors[-1] if errors and run["status"] == "failed" else None
        view["runtime_seconds"] = runtime_seconds(run, self.clock.now())
        view["runtime_limit_seconds"] = runtime_limit(run)
        view["retries_used"] = max(0, len(run["attempts"]) - 1)
        view["attempts"] = [
            {k: v for k, v in a.items() if not k.endswith("_s")} for a in run["attempts"]
        ]
        return view

    def get_run(self, project_id: str, value: str, identifier: str) -> dict[str, Any]:
        return self.run_view(self._lookup("run", "Experiment run", value, identifier, project_id))

    def list_runs(
        self,
        project_id: str,
        experiment: str | None,
        limit: int,
        skip: int,
        descending: bool,
    ) -> list[dict[str, Any]]:
        runs = self.store.list("run", project_id)
        if experiment is not None:
            found = self.store.get("experiment", experiment) or self.store.find(
                "experiment", experiment
            )
            if found is None:
                raise NotFound("Experiment", experiment)
            runs = [r for r in runs if r["experiment_id"] == found["id"]]
        if descending:
            runs.reverse()
        return [self.run_view(r) for r in _page(runs, limit, skip)]

    def delete_run(self, project_id: str, value: str, identifier: str) -> dict[str, Any]:
        run = self._lookup("run", "Experiment run", value, identifier, project_id)
        was = run["status"]
        self._remove_run(run)
        return {"deleted": True, "id": run["id"], "name": run["name"], "status_before": was}

    def _remove_run(self, run: dict[str, Any]) -> None:
        if run["status"] not in TERMINAL:
            self.jobs.cancel(run["id"])  # stopped first: its attempt ends "cancelled"
        run = self.store.get("run", run["id"]) or run
        for deployment in self.store.list("deployment", run["id"]):
            self.store.delete("deployment", deployment["id"])  # a run's deployments go with it
        self.store.delete("run", run["id"])
        self.store.delete_checkpoints(run["id"])
        self.files.delete_run(run["id"])
        self.emit("run.deleted", run)

    # Checkpoints ---------------------------------------------------------------------------

    def list_checkpoints(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        run = self._lookup("run", "Experiment run", run_id, "id", project_id)
        return [
            {k: v for k, v in c.items() if not k.endswith("_s")}
            for c in self.store.checkpoints(run["id"])
        ]

    def get_checkpoint(self, project_id: str, run_id: str, name: str) -> dict[str, Any]:
        for checkpoint in self.list_checkpoints(project_id, run_id):
            if checkpoint["name"] == name:
                return checkpoint
        raise NotFound("Checkpoint", name, by="name")

    # Deployments and inferences ----------------------------------------------------------

    def deploy(self, project_id: str, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """A deployment of the named checkpoint, or of the one ``criterion`` selects."""
        run = self._lookup("run", "Experiment run", run_id, "id", project_id)
        name = _check_name("deployment_name", body.get("deployment_name") or body.get("name"))
        version = str(body.get("version") or "v0.0.1")
        if not SEMVER.fullmatch(version):
            raise Invalid(
                f"version: '{version}' is not a semantic version such as v0.0.1 or 1.0.0."
            )
        if self.store.find("deployment", name, run["id"]) is not None:
            raise Conflict(f"Deployment '{name}' already exists for run '{run['name']}'.")
        checkpoints = self.store.checkpoints(run["id"])
        if body.get("checkpoint_name"):
            chosen = next((c for c in checkpoints if c["name"] == body["checkpoint_name"]), None)
            if chosen is None:
                raise NotFound("Checkpoint", str(body["checkpoint_name"]), by="name")
        else:
            chosen = select_checkpoint(checkpoints, body.get("criterion"))
        now = self._now()
        deployment_id = self._new_id()
        doc = {
            "id": deployment_id,
            "deployment_id": deployment_id,
            "name": name,
            "deployment_name": name,
            "version": version,
            "release_notes": body.get("release_notes"),
            "status": "active",
            "checkpoint_name": chosen["name"],
            "checkpoint_epoch": chosen["epoch"],
            "criterion": body.get("criterion"),
            "run_id": run["id"],
            "run_status": run["status"],
            "project_id": project_id,
            "created_at": now,
        }
        self.store.put("deployment", doc, scope=run["id"])
        self.emit("deployment.created", run, deployment=name, checkpoint=chosen["name"])
        return doc

    def list_deployments(self, project_id: str, run_id: str, limit: int, skip: int) -> list[Any]:
        run = self._lookup("run", "Experiment run", run_id, "id", project_id)
        return _page(self.store.list("deployment", run["id"]), limit, skip)

    def get_deployment(
        self, project_id: str, run_id: str, value: str, identifier: str
    ) -> dict[str, Any]:
        run = self._lookup("run", "Experiment run", run_id, "id", project_id)
        return self._lookup("deployment", "Deployment", value, identifier, run["id"])

    def infer(self, project_id: str, run_id: str, deployment_id: str, text: str) -> dict[str, Any]:
        """Predictions of a deployment's checkpoint for CSV text, by ``trainer.predict``.

        The columns must be the training features in training order; target columns are
        ignored, and the response says so in ``notes``.
        """
        deployment = self.get_deployment(project_id, run_id, deployment_id, "id")
        checkpoint = self._deployed_checkpoint(deployment)
        targets = (checkpoint.get("other_states") or {}).get("targets") or []
        header = [c.strip().strip('"') for c in text.split("\n", 1)[0].split(",")]
        ignored = [c for c in header if c in targets]
        try:
            result = predict({}, checkpoint, params={"dataset_buffer": text})
        except ExperimentError as error:
            raise Invalid(f"dataset: {error}") from None
        response: dict[str, Any] = {
            "predictions": result["predictions"],
            "rows": len(result["predictions"]),
            "deployment": deployment["name"],
            "checkpoint_name": deployment["checkpoint_name"],
        }
        if ignored:
            response["notes"] = [f"Ignored target column(s) {ignored} in the inference data."]
        return response

    def _deployed_checkpoint(self, deployment: dict[str, Any]) -> dict[str, Any]:
        # Checkpoint files never change once written: keep the last few deployed ones loaded.
        key = (deployment["run_id"], deployment["checkpoint_name"])
        with self._lock:
            if key not in self._deployed:
                if len(self._deployed) >= 8:
                    self._deployed.pop(next(iter(self._deployed)))
                self._deployed[key] = self.files.load_checkpoint(*key)
            return self._deployed[key]

    def infer_dataset(
        self, project_id: str, run_id: str, deployment_id: str, dataset_path: str
    ) -> dict[str, Any]:
        """Batch inference: ``dataset_path`` names a dataset of the project, or a local CSV."""
        if not dataset_path:
            raise Invalid(
                "dataset_path: required (a dataset name in the project, or a local path)."
            )
        dataset = self.store.find("dataset", dataset_path, project_id) or self.store.get(
            "dataset", dataset_path
        )
        if dataset is not None and dataset["project_id"] == project_id:
            text = self.files.dataset(dataset["id"]).read_text()
            result = self.infer(project_id, run_id, deployment_id, text)
            return {**result, "dataset": dataset["name"]}
        if dataset_path.startswith("s3://"):
            raise BadRequest("dataset_path: S3 is not available offline; upload the file instead.")
        path = Path(dataset_path.removeprefix("file://"))
        if not path.is_file():
            raise NotFound("Dataset", dataset_path, by="name or path")
        return {
            **self.infer(project_id, run_id, deployment_id, path.read_text()),
            "dataset": str(path),
        }

    # Clock and timeline --------------------------------------------------------------------

    def clock_state(self) -> dict[str, Any]:
        now = self.clock.now()
        upcoming = self.sim.next_event_time()
        return {
            "now": isoformat(now),
            "timestamp": now,
            "mode": self.clock.mode,
            "speed": self.clock.speed,
            # Rounded up: advancing to this time is sure to reach the event.
            "next_event_at": isoformat(math.ceil(upcoming * 1000) / 1000)
            if upcoming is not None
            else None,
        }

    def advance(self, seconds: float | None = None, to: float | None = None) -> dict[str, Any]:
        if (seconds is None) == (to is None):
            raise Invalid("Give exactly one of 'seconds' (a duration) or 'to' (a time).")
        now = self.clock.now()
        target = now + seconds if seconds is not None else float(to)  # type: ignore[arg-type]
        if target < now:
            raise Invalid(f"The clock cannot go back: now is {isoformat(now)}.")
        if not target <= parse_time(LATEST):
            raise Invalid(f"The simulated clock stops at {LATEST}; advance it by less.")
        if self.clock.mode == "realtime":
            raise Conflict("The clock is in realtime mode; switch to manual to advance it.")
        self.sim.advance_to(target)
        self._save_clock()
        return self.clock_state()

    def settle(self, timeout: float) -> dict[str, Any]:
        """Wait (wall seconds, at most ``timeout``) until nothing is due; in auto mode, until
        every run has gone as far as it can."""
        settled = self.sim.settle(timeout)
        self._save_clock()
        return {**self.clock_state(), "settled": settled}

    def set_clock_mode(self, mode: str, speed: float | None) -> dict[str, Any]:
        try:
            self.clock.set_mode(mode, speed)  # type: ignore[arg-type]
        except ValueError as error:
            raise Invalid(f"mode: {error}") from None
        self.sim.wake()
        self._save_clock()
        return self.clock_state()

    def events(self, run_id: str | None, after: int, limit: int) -> list[dict[str, Any]]:
        return self.store.events(run_id, after, limit)

    # Fault plans ---------------------------------------------------------------------------

    def _faults_for(self, run_id: str) -> list[Any]:
        run = self.store.get("run", run_id)
        emulator = RunParams.model_validate(run["params"]).emulator if run else None
        return [*(emulator.faults if emulator else []), *self.jobs.server_faults]

    def faults(self) -> list[dict[str, Any]]:
        return [f.model_dump() for f in self.jobs.server_faults]

    def set_faults(self, plan: Any) -> list[dict[str, Any]]:
        """Replace the server-wide fault plan (it applies to every run from now on)."""
        self.jobs.server_faults = parse_faults(plan)
        self.store.set_setting("faults", self.faults())
        return self.faults()

    # Webhooks ------------------------------------------------------------------------------

    def webhook_settings(self) -> dict[str, Any]:
        return self.webhooks.settings()

    def add_webhook_endpoint(self, url: str) -> dict[str, Any]:
        check_url(url, allow_remote=self.settings.allow_remote_webhooks, field="url")
        if url not in self.webhooks.endpoints:
            self.webhooks.endpoints.append(url)
            self.store.set_setting("webhook_endpoints", self.webhooks.endpoints)
        return self.webhooks.settings()

    def remove_webhook_endpoint(self, url: str) -> dict[str, Any]:
        if url not in self.webhooks.endpoints:
            raise NotFound("Webhook endpoint", url, by="url")
        self.webhooks.endpoints.remove(url)
        self.store.set_setting("webhook_endpoints", self.webhooks.endpoints)
        return self.webhooks.settings()

    def deliveries(self, run_id: str | None, status: str | None) -> list[dict[str, Any]]:
        return [public_delivery(d) for d in self.store.deliveries(status, run_id)]

    def resend(self, delivery_id: int) -> dict[str, Any]:
        return public_delivery(self.webhooks.resend(delivery_id))
