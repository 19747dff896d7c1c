"""Typed documents of the platform's resources: runs, attempts, checkpoints, webhook deliveries,
datasets.

Times are float seconds of simulated time; ISO text is made only at the edge, by ``public()``
(datasets keep the ISO text they have always been stored with). Each document is stored as one
JSON object (``to_doc`` / ``from_doc``). A resource whose answer is its document is its routes'
response model; the others' ``public()`` builds their response model (``schemas``), so an answer
that drifts from its schema fails where it is made. The run status machine is
``RUN_TRANSITIONS``: the only way a status changes is ``Run.move_to``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Literal, Self

from qcog_mock.mockserver import schemas
from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.runparams import RunParams

RunStatus = Literal["pending", "running", "completed", "failed"]
Outcome = Literal["completed", "timed_out", "crashed", "cancelled"]
TERMINAL: tuple[RunStatus, ...] = ("completed", "failed")

# (from, to): None is "not yet submitted". Between a failed attempt and its retry the run is
# pending again; a run that cannot go on (recovery finds it broken) fails from either state.
RUN_TRANSITIONS: frozenset[tuple[RunStatus | None, RunStatus]] = frozenset(
    {
        (None, "pending"),
        ("pending", "running"),
        ("pending", "failed"),
        ("running", "pending"),
        ("running", "completed"),
        ("running", "failed"),
    }
)


class IllegalTransition(RuntimeError):
    pass


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else isoformat(seconds)


@lru_cache(maxsize=512)
def _params(stored: str) -> RunParams:
    # Validated at submission; reading a run back must not validate (and warn) again each time.
    return RunParams.model_validate(json.loads(stored))


@dataclass
class Attempt:
    number: int
    started_at: float
    deadline: float
    resumed_from_epoch: int
    ended_at: float | None = None
    outcome: Outcome | None = None
    reason: str | None = None
    epochs_completed: int = 0

    @property
    def running(self) -> bool:
        return self.outcome is None

    def public(self) -> schemas.Attempt:
        return schemas.Attempt(
            number=self.number,
            started_at=isoformat(self.started_at),
            deadline=isoformat(self.deadline),
            ended_at=_iso(self.ended_at),
            outcome=self.outcome,
            reason=self.reason,
            resumed_from_epoch=self.resumed_from_epoch,
            epochs_completed=self.epochs_completed,
        )


@dataclass
class Run:
    id: str
    seq: int  # submission order: ties at one simulated instant resolve by it
    name: str
    description: str | None
    project_id: str
    experiment_id: str
    environment_id: str
    dataset_id: str
    params: RunParams
    metadata: dict[str, Any]
    local_webhook_url: str | None
    created_at: float
    updated_at: float
    status: RunStatus | None = None
    metrics: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    current_attempt: int | None = None
    next_attempt_at: float | None = None
    disk_bytes: int = 0  # of the checkpoint files it keeps
    # Where the emulator departs from what the platform would do for this run (a GPU it lacks).
    notes: list[str] = field(default_factory=list)

    @property
    def max_attempts(self) -> int:
        return self.params.retries + 1

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def move_to(self, status: RunStatus) -> None:
        if (self.status, status) not in RUN_TRANSITIONS:
            raise IllegalTransition(f"run {self.name}: {self.status} → {status} is not allowed")
        self.status = status

    def runtime_seconds(self, now: float) -> float:
        """Σ attempt running time (an unfinished attempt counts up to now)."""
        total = 0.0
        for attempt in self.attempts:
            end = attempt.ended_at if attempt.ended_at is not None else now
            total += max(0.0, end - attempt.started_at)
        return total

    def runtime_limit(self) -> float:
        return float(self.params.timeout * self.max_attempts)

    # Storage and the edge --------------------------------------------------------------------

    def to_doc(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k not in ("params", "attempts")}
        doc["params"] = self.params.stored()
        doc["attempts"] = [asdict(a) for a in self.attempts]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Run:
        values = dict(doc)
        values["params"] = _params(json.dumps(doc["params"], sort_keys=True))
        values["attempts"] = [Attempt(**a) for a in doc["attempts"]]
        return cls(**values)

    def public(self, now: float) -> schemas.Run:
        """The run object of the API: the documented fields plus qcog-mock's additions."""
        assert self.status is not None, "a run is shown only once submitted"
        failed = self.status == "failed" and bool(self.errors)
        return schemas.Run(
            id=self.id,
            name=self.name,
            description=self.description,
            project_id=self.project_id,
            experiment_id=self.experiment_id,
            environment_id=self.environment_id,
            dataset_id=self.dataset_id,
            params=self.params.stored(),
            metadata=self.metadata,
            status=self.status,
            metrics=self.metrics,
            errors=self.errors or None,
            local_webhook_url=self.local_webhook_url,
            timeout=self.params.timeout,
            retries=self.params.retries,
            max_attempts=self.max_attempts,
            attempts=[a.public() for a in self.attempts],
            current_attempt=self.current_attempt,
            next_attempt_at=_iso(self.next_attempt_at),
            retries_used=max(0, len(self.attempts) - 1),
            runtime_seconds=self.runtime_seconds(now),
            runtime_limit_seconds=self.runtime_limit(),
            disk_bytes=self.disk_bytes,
            notes=self.notes or None,
            created_at=isoformat(self.created_at),
            updated_at=isoformat(self.updated_at),
            # Set only once failed: answers are rendered without unset fields.
            **({"error": self.errors[-1]} if failed else {}),
        )


@dataclass
class Checkpoint:
    name: str
    epoch: int
    attempt: int
    run_id: str
    path: str
    metrics: dict[str, Any]
    created_at: float
    size_bytes: int = 0

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Checkpoint:
        return cls(**doc)

    def public(self) -> schemas.Checkpoint:
        return schemas.Checkpoint(**{**asdict(self), "created_at": isoformat(self.created_at)})


@dataclass
class Delivery:
    """One message to one URL, with every attempt made to deliver it."""

    message_id: str
    event_seq: int
    type: str
    run_id: str | None
    url: str
    body: str
    created_at: float
    next_attempt_at: float
    status: Literal["pending", "delivered", "failed"] = "pending"
    attempts: list[dict[str, Any]] = field(default_factory=list)
    id: int = 0  # given by the outbox table

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Delivery:
        return cls(**doc)

    def public(self) -> schemas.Delivery:
        return schemas.Delivery(
            id=self.id,
            message_id=self.message_id,
            event_seq=self.event_seq,
            type=self.type,
            run_id=self.run_id,
            url=self.url,
            created_at=isoformat(self.created_at),
            next_attempt_at=isoformat(self.next_attempt_at) if self.status == "pending" else None,
            status=self.status,
            attempts=self.attempts,
            payload=json.loads(self.body),
        )


class Document:
    """A resource stored as one JSON object: ``to_doc`` and ``from_doc``. The resources whose
    answer is their document (datasets, deployments, environments, experiments, users,
    projects, memberships) are their routes' response models as they are: one shape, once."""

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Self:
        return cls(**doc)


@dataclass
class User(Document):
    id: str
    name: str
    email: str
    system_role: str
    created_at: str


@dataclass
class Project(Document):
    id: str
    name: str
    description: str | None
    allowed_gpus: list[str]
    created_at: str
    updated_at: str


@dataclass
class ApiKey(Document):
    """A key's digest (``name``: the key itself is never stored) and whose key it is."""

    id: str
    name: str
    hint: str
    user_id: str
    project_id: str | None
    created_at: str


@dataclass
class Membership(Document):
    """A user's role in a project (``name`` is ``user_id:project_id``, unique)."""

    id: str
    name: str
    user_id: str
    project_id: str
    role: str
    created_at: str


@dataclass
class Environment(Document):
    """Where a run executes: a CPU or GPU image."""

    id: str
    name: str
    description: str | None
    instance: Literal["cpu", "gpu"]
    image_id: str | None
    configuration: dict[str, Any]
    metadata: dict[str, Any] | None
    created_ts: str
    updated_ts: str


@dataclass
class Experiment(Document):
    """What a run trains: the platform's experiment package."""

    id: str
    name: str
    description: str | None
    file_path: str | None
    format: str
    created_ts: str
    updated_ts: str


@dataclass
class Dataset(Document):
    """A project's CSV: its shape, its size and where it came from. An S3 reference the server
    could not read (no ``--s3-root``) has no shape: ``None`` rows and columns."""

    id: str
    name: str
    description: str | None
    project_id: str
    configuration: dict[str, Any]
    number_of_rows: int | None
    number_of_columns: int | None
    columns: list[str]
    created_at: str
    updated_at: str
    format: str = "csv"
    size_bytes: int = 0

    @property
    def readable(self) -> bool:
        """Whether the server holds its rows (every dataset but an S3 reference it cannot read)."""
        return self.number_of_rows is not None

    def summary(self) -> dict[str, Any]:
        """How ``whoami`` lists it."""
        return {"id": self.id, "name": self.name, "description": self.description}


@dataclass
class Deployment(Document):
    """A run's checkpoint, deployed under a name and a version, for inferences."""

    id: str
    deployment_id: str
    name: str
    deployment_name: str
    version: str
    release_notes: str | None
    status: str
    checkpoint_name: str
    checkpoint_epoch: int
    criterion: dict[str, Any] | None
    run_id: str
    run_status: str | None
    project_id: str
    created_at: str
