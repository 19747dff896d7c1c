"""Request bodies per resource, and the response models of answers that are not a stored
document as it is (runs, checkpoints, a made key, the control plane's); a resource whose answer
is its document is its own response model (``documents.py``).

Request models accept extra keys, as the platform ignores what it does not know. Response models
list every field the answer carries.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qcog_mock.mockserver.clock import MAX_SPEED, ClockMode


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# Requests ---------------------------------------------------------------------------------


class UserCreate(_Open):
    email: str
    name: str
    system_role: Literal["admin", "user"] = "user"


class ProjectMember(_Open):
    user_id: str
    project_role: str = "owner"


class ProjectCreate(_Open):
    name: str
    description: str | None = None
    user_associated: list[ProjectMember] = Field(default_factory=list)


class ProjectUpdate(_Open):
    allowed_gpus: list[str] | None = None
    description: str | None = None


class ApiKeyCreate(_Open):
    user_id: str
    project_id: str | None = None


class UserProjectCreate(_Open):
    user_id: str
    project_id: str
    role: str = "viewer"


class EnvironmentCreate(_Open):
    name: str
    description: str | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] | None = None


class ExperimentCreate(_Open):
    name: str
    description: str | None = None
    file_path: str | None = None
    format: str = "zip"


class DatasetCreate(_Open):
    name: str
    description: str | None = None
    configuration: dict[str, Any]
    override: bool = False


class RunCreate(_Open):
    experiment_id: str
    environment_id: str
    dataset_id: str
    params: dict[str, Any]
    metadata: dict[str, Any] | None = None
    name: str
    description: str | None = None
    override: bool | None = None


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float | None = Field(default=None, ge=0, description="A duration to advance by.")
    to: str | None = Field(default=None, description="An ISO-8601 time to advance to.")


class ClockModeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: ClockMode
    speed: float | None = Field(default=None, gt=0, le=MAX_SPEED)


class CheckpointDeploy(_Open):
    checkpoint_name: str | None = None
    deployment_name: str
    release_notes: str | None = None
    version: str | None = None


class DeploymentCreate(_Open):
    deployment_name: str
    version: str | None = None
    release_notes: str | None = None
    criterion: dict[str, Any] | None = None
    checkpoint_name: str | None = None


class SyncInference(_Open):
    dataset_file: str
    params: dict[str, Any] | None = None


class BatchInference(_Open):
    dataset_path: str
    params: dict[str, Any] | None = None


class WebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str


# Responses --------------------------------------------------------------------------------


class WhoAmI(_Open):
    user_id: str | None
    user_name: str | None
    project_id: str | None
    project_name: str | None
    system_permissions: list[str]
    project_permissions: list[str]
    datasets: list[dict[str, Any]]


class ApiKey(_Open):
    """A key as made: the only answer that shows the key itself."""

    id: str
    name: str = Field(description="The key's digest: the key is never stored.")
    hint: str
    user_id: str
    project_id: str | None
    created_at: str
    x_api_key: str


class Attempt(_Open):
    number: int
    started_at: str
    deadline: str
    ended_at: str | None
    outcome: Literal["completed", "timed_out", "crashed", "cancelled"] | None
    reason: str | None
    resumed_from_epoch: int
    epochs_completed: int


class Run(_Open):
    id: str
    name: str
    description: str | None
    project_id: str
    experiment_id: str
    environment_id: str
    dataset_id: str
    params: dict[str, Any]
    metadata: dict[str, Any]
    status: Literal["pending", "running", "completed", "failed"]
    metrics: dict[str, Any] | None
    errors: list[str] | None
    error: str | None = None  # present only when the run failed, as the docs' examples test
    local_webhook_url: str | None
    timeout: int
    retries: int
    max_attempts: int
    attempts: list[Attempt]
    current_attempt: int | None
    next_attempt_at: str | None
    retries_used: int
    runtime_seconds: float
    runtime_limit_seconds: float
    disk_bytes: int = 0
    notes: list[str] | None = Field(
        default=None,
        description="qcog-mock's: where this run departs from the platform (a GPU it lacks).",
    )
    created_at: str
    updated_at: str


class Checkpoint(_Open):
    name: str
    epoch: int
    attempt: int
    run_id: str
    path: str
    metrics: dict[str, Any]
    created_at: str
    size_bytes: int


class Deleted(_Open):
    deleted: bool
    id: str
    name: str
    status_before: str | None = Field(
        default=None, description="A run's: the status it was stopped in."
    )


class Clock(_Open):
    now: str
    timestamp: float
    mode: str
    speed: float
    next_event_at: str | None


class Settled(Clock):
    settled: bool = Field(description="Whether nothing was due before the timeout.")


class Reset(_Open):
    reset: bool
    clock: Clock


class WebhookSettings(_Open):
    secret: str
    endpoints: list[str]
    checkpoint_events: bool
    timeout_seconds: float
    backoff_seconds: list[float]


class Delivery(_Open):
    id: int
    message_id: str
    event_seq: int
    type: str
    run_id: str | None
    url: str
    created_at: str
    next_attempt_at: str | None = Field(description="Set while the delivery is pending.")
    status: Literal["pending", "delivered", "failed"]
    attempts: list[dict[str, Any]]
    payload: dict[str, Any]


class Event(_Open):
    seq: int
    time: str
    type: str


class Predictions(_Open):
    predictions: list[list[float]]
    rows: int
    notes: list[str] | None
    deployment: str
    checkpoint_name: str
    dataset: str | None = Field(default=None, description="Batch inferences only: what was read.")


class Problem(BaseModel):
    """Every error answer: one message naming the field at fault and the fix."""

    detail: str


_PROBLEMS = {
    400: "The request cannot be served as sent (for example an S3 location, offline).",
    401: "No credentials, or credentials this server does not know.",
    403: "The credentials do not open this project or operation.",
    404: "What the request names does not exist (the message contains 'not found').",
    409: "It already exists, or is in use.",
    413: "The body is larger than this route's limit.",
    422: "A field is invalid; the message names it and the fix.",
    429: "Too many blocking control calls at once; try again.",
    503: "An inference's worker ended before it answered; send the request again.",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in _PROBLEMS.items()
}
