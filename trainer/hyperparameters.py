"""Hyperparameters of the ``pytorch-models`` experiment.

Field for field the models of the public ``qcog_types.pytorch_models.hyperparameters``: same names,
types, defaults and validator messages, and, like them, unknown keys are ignored (``target=``, the
platform guides' spelling, among them: ``targets`` is required). Two additions, both stricter
only where the public models would fail later or never:

- ``epochs`` and ``batch_size`` must be at least 1 and ``split`` strictly between 0 and 1;
- the ``type`` strings of the optimizer, loss and scheduler configs must name a class of the right
  kind in ``torch.optim``, ``torch.nn`` or ``torch.optim.lr_scheduler``. The public experiment would
  resolve them with ``getattr`` at run time; here ``"Module"`` or ``"os.system"`` is rejected when
  the hyperparameters are built.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from qcog_mock.trainer import names

logger = logging.getLogger(__name__)

HSMModel = Literal["general", "pauli", "general_fullenergy"]
SUPPORTED_DEVICES = ("cpu", "cuda", "mps", "auto")


class PerGroupOptimizerParams(BaseModel):
    """Optimizer settings for the parameters whose names contain any of the given substrings."""

    param_name_contains: list[str]
    params: dict[str, Any]


class OptimizerConfig(BaseModel):
    type: str
    default_params: dict[str, Any] = Field(default_factory=dict)
    group_params: list[PerGroupOptimizerParams] | None = None

    @field_validator("type")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        return names.check("optimizer", value)


class LossFunctionConfig(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    type: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        return names.check("loss function", value)


class SchedulerConfig(BaseModel):
    type: str
    params: dict[str, Any]
    interval: Literal["epoch", "step"] = "epoch"

    @field_validator("type")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        return names.check("scheduler", value)


class EarlyStoppingConfig(BaseModel):
    monitor: str
    min_delta: float = 0.0001
    patience: int = 10
    mode: Literal["min", "max"] = "min"
    verbose: bool = False
    restore_best_weights: bool = True


class GradientClippingConfig(BaseModel):
    max_norm: float
    norm_type: float = 2.0


class ModelHyperparameters(BaseModel):
    hsm_model: HSMModel
    weighted_layer: bool = False
    epochs: int
    batch_size: int
    split: float = 0.2
    seed: int | None = 42
    optimizer_config: OptimizerConfig
    loss_fn_config: LossFunctionConfig
    scheduler_config: SchedulerConfig | None = None
    early_stopping_config: EarlyStoppingConfig | None = None
    gradient_clipping_config: GradientClippingConfig | None = None
    num_workers: int = 0
    pin_memory: bool = False
    targets: str | list[str]
    input_features: list[str] | None = None
    device: str = "auto"

    # Additions to the public models: values they accept but that can never train.
    @field_validator("epochs", "batch_size")
    @classmethod
    def _at_least_one(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be at least 1.")
        return value

    @field_validator("split")
    @classmethod
    def _split_fraction(cls, value: float) -> float:
        if not 0.0 < value < 1.0:
            raise ValueError(
                "split must be between 0 and 1 (exclusive): it is the fraction of rows held out "
                "for validation, e.g. 0.2."
            )
        return value

    @property
    def targets_list(self) -> list[str]:
        return [self.targets] if isinstance(self.targets, str) else list(self.targets)

    @model_validator(mode="after")
    def _validate_training_setup(self) -> ModelHyperparameters:
        if self.device not in SUPPORTED_DEVICES:
            raise ValueError(
                f"Unsupported device: {self.device}. Must be 'auto', 'cpu', 'cuda', or 'mps'."
            )
        targets = self.targets_list
        if not targets:
            raise ValueError("At least one target must be specified.")
        if len(set(targets)) != len(targets):
            raise ValueError("Target columns must be unique.")
        if self.input_features is not None:
            if not self.input_features:
                raise ValueError("If input_features is specified, it cannot be empty.")
            if len(set(self.input_features)) != len(self.input_features):
                raise ValueError("Input feature columns must be unique.")
            overlap = sorted(set(targets) & set(self.input_features))
            if overlap:
                raise ValueError(
                    "Target columns and input feature columns cannot overlap. "
                    f"Overlapping columns: {overlap}"
                )
        self._warn_about_monitors()
        return self

    def _warn_about_monitors(self) -> None:
        # Warnings only, as in the public models.
        scheduler, stopping = self.scheduler_config, self.early_stopping_config
        plateau_monitor = None
        if scheduler is not None and scheduler.type == "ReduceLROnPlateau":
            plateau_monitor = scheduler.params.get("monitor", "val_loss")
            if stopping is not None and stopping.monitor != plateau_monitor:
                logger.warning(
                    "ReduceLROnPlateau monitors '%s' but early stopping monitors '%s'.",
                    plateau_monitor,
                    stopping.monitor,
                )
        for monitor in (plateau_monitor, stopping.monitor if stopping else None):
            if monitor is not None and not monitor.startswith(("val_", "train_")):
                logger.warning(
                    "Monitor '%s' starts with neither 'val_' nor 'train_'; the experiment "
                    "only reports train_loss and val_loss.",
                    monitor,
                )
        optimizer = self.optimizer_config
        groups = optimizer.group_params or []
        if not any(
            key in params
            for params in [optimizer.default_params, *(g.params for g in groups)]
            for key in ("lr", "learning_rate")
        ):
            logger.warning(
                "No learning rate ('lr') in optimizer_config.default_params nor in any group. "
                "The optimizer's default LR will be used if available."
            )


def _check_operator_counts(input_count: int, output_count: int) -> None:
    if input_count <= 0:
        raise ValueError("Input operator count must be greater than 0.")
    if output_count <= 0:
        raise ValueError("Output operator count must be greater than 0.")


def _check_targets_match(output_count: int, targets: list[str]) -> None:
    if output_count != len(targets):
        raise ValueError(
            f"Output operator count ({output_count}) must match the number of targets "
            f"({len(targets)})."
        )


class GeneralHSModelHyperparameters(ModelHyperparameters):
    hsm_model: Literal["general", "general_fullenergy"]
    input_operator_count: int
    output_operator_count: int
    hilbert_space_dims: int
    beta: float | None = None
    complex: bool = True
    eigh_eps: float | None = 1e-8

    @model_validator(mode="after")
    def _validate_general(self) -> GeneralHSModelHyperparameters:
        _check_operator_counts(self.input_operator_count, self.output_operator_count)
        if self.hilbert_space_dims <= 0:
            raise ValueError("Hilbert space dimension must be greater than 0.")
        _check_targets_match(self.output_operator_count, self.targets_list)
        return self


class PauliHSModelHyperparameters(ModelHyperparameters):
    hsm_model: Literal["pauli"]
    input_operator_count: int
    output_operator_count: int
    qubits_count: int
    input_operator_pauli_weight: int | None = None
    output_operator_pauli_weight: int | None = None
    eigh_eps: float | None = 1e-8

    @model_validator(mode="after")
    def _validate_pauli(self) -> PauliHSModelHyperparameters:
        _check_operator_counts(self.input_operator_count, self.output_operator_count)
        if self.qubits_count <= 0:
            raise ValueError("Quibts count must be greater than 0.")  # sic, as published
        weight = self.input_operator_pauli_weight
        if weight is not None and not 1 <= weight <= self.qubits_count:
            raise ValueError(
                "Input Pauli weight cannot be greater than qubits count or less than 1."
            )
        weight = self.output_operator_pauli_weight
        if weight is not None and not 1 <= weight <= self.qubits_count:
            raise ValueError(
                "Output Pauli weight cannot be greater than qubits count or less than 1."
            )
        _check_targets_match(self.output_operator_count, self.targets_list)
        return self


SupportedHyperparameters = GeneralHSModelHyperparameters | PauliHSModelHyperparameters

_BY_MODEL: dict[str, type[ModelHyperparameters]] = {
    "general": GeneralHSModelHyperparameters,
    "general_fullenergy": GeneralHSModelHyperparameters,
    "pauli": PauliHSModelHyperparameters,
}


def parse_hyperparameters(data: dict[str, Any] | BaseModel) -> SupportedHyperparameters:
    """Validate a hyperparameter dict with the model its ``hsm_model`` selects."""
    if isinstance(data, BaseModel):
        data = data.model_dump()
    if not isinstance(data, dict) or not data:
        raise ValueError("Hyperparameters must be provided")
    model = data.get("hsm_model")
    if model not in _BY_MODEL:
        raise ValueError(
            f"hsm_model type '{model}' is not explicitly handled or is missing. "
            "Available types are: general, pauli, general_fullenergy"
        )
    return _BY_MODEL[model].model_validate(data)  # type: ignore[return-value]
