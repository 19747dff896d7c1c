"""Validation of a run's ``params`` at submission, with errors that name the field and the fix.

``params`` carries the experiment's ``hyperparameters`` and the resources of each attempt:
``cpu_count`` (default 1), ``memory`` in MB (default 1024), ``timeout`` in seconds per attempt
(1..86400, default 86400), ``retries`` (0..max_retries, default 0), optional ``gpu_type`` and
``disk_size``, and the emulator-only ``emulator`` object (per-run cost and faults). Unknown keys are
kept and ignored, as the platform does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from qcog_mock.mockserver.errors import Invalid
from qcog_mock.mockserver.settings import MAX_TIMEOUT_SECONDS
from qcog_mock.trainer.hyperparameters import SupportedHyperparameters, parse_hyperparameters

GPU_TYPES = ("T4", "L4", "A10G", "A100-40GB", "A100-80GB", "V100")


def _integer(value: Any) -> Any:
    # JSON has one number type: accept 3600 and 3600.0, refuse 3600.5, "3600" and true.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_integer)]


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrashFault(_Fault):
    """Raise at the start of ``epoch`` (1-based, counted over the whole run) in ``attempt``."""

    type: Literal["crash"]
    attempt: Integer = Field(ge=1)
    epoch: Integer = Field(ge=1)
    message: str = "injected crash"


class HangFault(_Fault):
    """Attempt ``attempt`` stops progressing (from ``epoch``, else at once) until it times out."""

    type: Literal["hang"]
    attempt: Integer = Field(ge=1)
    epoch: Integer | None = Field(default=None, ge=1)


class SlowFault(_Fault):
    """From ``from_epoch`` on, every epoch costs ``epoch_seconds``."""

    type: Literal["slow"]
    from_epoch: Integer = Field(ge=1)
    epoch_seconds: float = Field(gt=0)


class WebhookFault(_Fault):
    """Deliveries misbehave: for the first ``first`` messages, or for ``seconds`` after submission.

    ``down``: the endpoint answers ``status`` (default 503); ``timeout``: it does not answer;
    ``duplicate``: each message is delivered twice; ``delay``: each message is held back
    ``delay_seconds``, so later ones overtake it.
    """

    type: Literal["webhook_down", "webhook_timeout", "webhook_duplicate", "webhook_delay"]
    first: Integer | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)
    status: Integer = Field(default=503, ge=300, le=599)
    delay_seconds: float = Field(default=600, gt=0, le=366 * 86400)


Fault = Annotated[CrashFault | HangFault | SlowFault | WebhookFault, Field(discriminator="type")]


class EmulatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epoch_seconds: float | None = Field(default=None, gt=0)
    faults: list[Fault] = Field(default_factory=list)


class RunParams(BaseModel):
    model_config = ConfigDict(extra="allow")
    hyperparameters: dict[str, Any]
    cpu_count: Integer = 1
    memory: Integer = 1024
    timeout: Integer = MAX_TIMEOUT_SECONDS
    retries: Integer = 0
    gpu_type: str | None = None
    disk_size: Integer | None = None
    emulator: EmulatorParams | None = None


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _pydantic_problems(prefix: str, error: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{prefix}.{_location(e['loc'])}: {e['msg']}" if e["loc"] else f"{prefix}: {e['msg']}"
        for e in error.errors()
    )


def validate_params(
    params: Any, *, max_retries: int, allowed_gpus: list[str]
) -> tuple[RunParams, SupportedHyperparameters]:
    """Check ``params``; raise ``Invalid`` (422) naming every field at fault."""
    if not isinstance(params, dict):
        raise Invalid("params: must be an object with 'hyperparameters', 'timeout', 'retries', …")
    if not params.get("hyperparameters"):
        raise Invalid(
            "params.hyperparameters: required; pass the experiment's hyperparameters "
            "(e.g. GeneralHSModelHyperparameters(...) or its model_dump())."
        )
    try:
        run_params = RunParams.model_validate(params)
    except pydantic.ValidationError as error:
        raise Invalid(_pydantic_problems("params", error)) from None
    problems = []
    if not 1 <= run_params.timeout <= MAX_TIMEOUT_SECONDS:
        problems.append(
            f"params.timeout: {run_params.timeout} is out of range; it is seconds per attempt, "
            f"from 1 to {MAX_TIMEOUT_SECONDS} (24 h). Use retries to run longer in total."
        )
    if not 0 <= run_params.retries <= max_retries:
        problems.append(
            f"params.retries: {run_params.retries} is out of range; it counts the attempts after "
            f"the first, from 0 to {max_retries}."
        )
    if run_params.cpu_count < 1:
        problems.append(f"params.cpu_count: {run_params.cpu_count} must be at least 1.")
    if run_params.memory <= 0:
        problems.append(f"params.memory: {run_params.memory} must be greater than 0 (MB).")
    if run_params.disk_size is not None and run_params.disk_size <= 0:
        problems.append(f"params.disk_size: {run_params.disk_size} must be greater than 0 (MB).")
    gpu = run_params.gpu_type
    if gpu is not None and gpu not in GPU_TYPES:
        problems.append(
            f"params.gpu_type: '{gpu}' is not a known GPU type; use one of {list(GPU_TYPES)}."
        )
    elif gpu is not None and gpu not in allowed_gpus:
        problems.append(
            f"params.gpu_type: '{gpu}' is not allowed for this project (allowed: {allowed_gpus}); "
            "an admin can add it with AdminClient.add_gpu_to_project."
        )
    if problems:
        raise Invalid(" ".join(problems))
    try:
        hyperparameters = parse_hyperparameters(run_params.hyperparameters)
    except pydantic.ValidationError as error:
        raise Invalid(_pydantic_problems("params.hyperparameters", error)) from None
    except ValueError as error:
        raise Invalid(f"params.hyperparameters.hsm_model: {error}") from None
    return run_params, hyperparameters


_FAULT_LIST = pydantic.TypeAdapter(list[Fault])


def parse_faults(plan: Any) -> list[Any]:
    """A validated fault plan; ``Invalid`` naming the entry at fault."""
    try:
        return _FAULT_LIST.validate_python(plan)
    except pydantic.ValidationError as error:
        raise Invalid(_pydantic_problems("faults", error)) from None
