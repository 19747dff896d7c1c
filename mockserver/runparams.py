"""A run's ``params``, validated once at submission into a typed ``RunParams``.

``params`` carries the experiment's ``hyperparameters`` and the resources of each attempt:
``cpu_count`` (default 1), ``memory`` in MB (default 1024), ``timeout`` in seconds per attempt
(1..86400, default 86400), ``retries`` (0..max_retries, default 0), optional ``gpu_type`` and
``disk_size``, and the emulator-only ``emulator`` object (per-run cost and faults). Unknown keys are
kept and ignored, as the platform does. Errors name the field and the fix.
"""

from __future__ import annotations

import math
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from qcog_mock.mockserver.errors import Invalid, pydantic_problems
from qcog_mock.mockserver.faults import Fault, Integer
from qcog_mock.mockserver.settings import MAX_TIMEOUT_SECONDS
from qcog_mock.trainer.hyperparameters import (
    PauliHSModelHyperparameters,
    SupportedHyperparameters,
    parse_hyperparameters,
)

# Every GPU type the platform's documentation and clients name.
GPU_TYPES = ("T4", "L4", "A10G", "A100-40GB", "A100-80GB", "H100", "V100")
# What a CPU emulator can honour (the README's "Limits"): a 64-dimensional Hilbert space is
# about 6 s per epoch on the guide's data; 7 qubits alone need a 2 GB Pauli basis.
MAX_HILBERT_DIMS = 64
MAX_QUBITS = 6
MAX_EPOCHS = 10_000
# Operators and learnable numbers: a checkpoint holds the parameters and the optimizer's state,
# about 12 bytes per parameter with Adam, so 4 M parameters are ~50 MB per kept checkpoint.
MAX_INPUT_OPERATORS = 4_096
MAX_PARAMETERS = 4_000_000
MIN_EPOCH_SECONDS = 0.01


class EmulatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epoch_seconds: float | None = Field(default=None, ge=MIN_EPOCH_SECONDS, le=366 * 86400)
    faults: list[Fault] = Field(default_factory=list)


class Resources(BaseModel):
    """Everything in ``params`` but the hyperparameters."""

    model_config = ConfigDict(extra="allow")
    cpu_count: Integer = 1
    memory: Integer = 1024
    timeout: Integer = MAX_TIMEOUT_SECONDS
    retries: Integer = 0
    gpu_type: str | None = None
    disk_size: Integer | None = None
    emulator: EmulatorParams | None = None


class RunParams(Resources):
    hyperparameters: SupportedHyperparameters

    @field_validator("hyperparameters", mode="before")
    @classmethod
    def _by_model(cls, value: Any) -> Any:
        # Stored params are a dict: its hsm_model picks the model, as at submission.
        return value if isinstance(value, BaseModel) else parse_hyperparameters(value)

    @property
    def faults(self) -> list[Fault]:
        return self.emulator.faults if self.emulator else []

    def stored(self) -> dict[str, Any]:
        """As sent (hyperparameters in their current spelling), without the defaults."""
        return self.model_dump(mode="json", exclude_unset=True)


def validate_params(params: Any, *, max_retries: int, allowed_gpus: list[str]) -> RunParams:
    """Check ``params``; raise ``Invalid`` (422) naming every field at fault."""
    if not isinstance(params, dict):
        raise Invalid("params: must be an object with 'hyperparameters', 'timeout', 'retries', …")
    if not params.get("hyperparameters"):
        raise Invalid(
            "params.hyperparameters: required; pass the experiment's hyperparameters "
            "(e.g. GeneralHSModelHyperparameters(...) or its model_dump())."
        )
    rest = {k: v for k, v in params.items() if k != "hyperparameters"}
    try:
        resources = Resources.model_validate(rest)
    except pydantic.ValidationError as error:
        raise Invalid(pydantic_problems("params", error)) from None
    problems = _range_problems(resources, max_retries, allowed_gpus)
    if problems:
        raise Invalid(" ".join(problems))
    raw = params["hyperparameters"]
    if isinstance(raw, dict) and "target" in raw and "targets" not in raw:
        # The platform validates with the current types: `targets` is required, and `target`
        # is an unknown key they ignore (beside `targets`, it is ignored here too).
        raise Invalid(
            "params.hyperparameters.target: the platform's hyperparameter types name this field "
            "'targets'; send targets=… (the guides' target= is refused by qcog_types too)."
        )
    try:
        hyperparameters = parse_hyperparameters(raw)
    except pydantic.ValidationError as error:
        raise Invalid(pydantic_problems("params.hyperparameters", error)) from None
    except ValueError as error:
        raise Invalid(f"params.hyperparameters.hsm_model: {error}") from None
    if problems := _size_problems(hyperparameters):
        raise Invalid(" ".join(problems))
    return RunParams.model_validate({**rest, "hyperparameters": hyperparameters})


def _size_problems(hp: SupportedHyperparameters) -> list[str]:
    """Sizes beyond what the emulator trains on a CPU in reasonable time and memory."""
    problems = []
    where = "params.hyperparameters"
    if isinstance(hp, PauliHSModelHyperparameters) and hp.qubits_count > MAX_QUBITS:
        problems.append(
            f"{where}.qubits_count: {hp.qubits_count} is more than qcog-mock trains on a CPU "
            f"(at most {MAX_QUBITS}: a {2**MAX_QUBITS}-dimensional Hilbert space)."
        )
    dims = getattr(hp, "hilbert_space_dims", None)
    if dims is not None and dims > MAX_HILBERT_DIMS:
        problems.append(
            f"{where}.hilbert_space_dims: {dims} is more than qcog-mock trains on a CPU "
            f"(at most {MAX_HILBERT_DIMS})."
        )
    if hp.epochs > MAX_EPOCHS:
        problems.append(f"{where}.epochs: {hp.epochs} is more than the limit of {MAX_EPOCHS}.")
    inputs = getattr(hp, "input_operator_count", 0)
    if inputs > MAX_INPUT_OPERATORS:
        problems.append(
            f"{where}.input_operator_count: {inputs} is more than qcog-mock trains (at most "
            f"{MAX_INPUT_OPERATORS} input features)."
        )
    elif not problems and (count := parameter_count(hp)) > MAX_PARAMETERS:
        problems.append(
            f"{where}: the model would have {count:,} parameters, more than qcog-mock trains (at "
            f"most {MAX_PARAMETERS:,}); use fewer input operators or a smaller Hilbert space."
        )
    return problems


def parameter_count(hp: SupportedHyperparameters) -> int:
    """The model's learnable numbers (hsm-model §2): per operator N² for a complex General
    HSM (N(N+1)/2 real), or one coefficient per Pauli string up to the operator's weight."""
    if isinstance(hp, PauliHSModelHyperparameters):
        q = hp.qubits_count

        def strings(weight: int | None) -> int:
            return sum(math.comb(q, i) * 3**i for i in range((weight or q) + 1))

        return hp.input_operator_count * strings(
            hp.input_operator_pauli_weight
        ) + hp.output_operator_count * strings(hp.output_operator_pauli_weight)
    n = int(getattr(hp, "hilbert_space_dims", 0) or 0)
    per_operator = n * n if getattr(hp, "complex", True) else n * (n + 1) // 2
    return (hp.input_operator_count + hp.output_operator_count) * per_operator


def _range_problems(params: Resources, max_retries: int, allowed_gpus: list[str]) -> list[str]:
    problems = []
    if not 1 <= params.timeout <= MAX_TIMEOUT_SECONDS:
        problems.append(
            f"params.timeout: {params.timeout} is out of range; it is seconds per attempt, "
            f"from 1 to {MAX_TIMEOUT_SECONDS} (24 h). Use retries to run longer in total."
        )
    if not 0 <= params.retries <= max_retries:
        problems.append(
            f"params.retries: {params.retries} is out of range; it counts the attempts after "
            f"the first, from 0 to {max_retries}."
        )
    if params.cpu_count < 1:
        problems.append(f"params.cpu_count: {params.cpu_count} must be at least 1.")
    if params.memory <= 0:
        problems.append(f"params.memory: {params.memory} must be greater than 0 (MB).")
    if params.disk_size is not None and params.disk_size <= 0:
        problems.append(f"params.disk_size: {params.disk_size} must be greater than 0 (MB).")
    gpu = params.gpu_type
    if gpu is not None and gpu not in GPU_TYPES:
        problems.append(
            f"params.gpu_type: '{gpu}' is not a known GPU type; use one of {list(GPU_TYPES)}."
        )
    elif gpu is not None and gpu not in allowed_gpus:
        problems.append(
            f"params.gpu_type: '{gpu}' is not allowed for this project (allowed: {allowed_gpus}); "
            "an admin can add it with AdminClient.add_gpu_to_project."
        )
    return problems
