from __future__ import annotations

from typing import Any

import pydantic
import pytest

from qcog_mock.trainer import names, registry
from qcog_mock.trainer.hyperparameters import (
    EarlyStoppingConfig,
    GeneralHSModelHyperparameters,
    GradientClippingConfig,
    LossFunctionConfig,
    ModelHyperparameters,
    OptimizerConfig,
    PauliHSModelHyperparameters,
    PerGroupOptimizerParams,
    SchedulerConfig,
    parse_hyperparameters,
)

BASE: dict[str, Any] = {
    "epochs": 3,
    "batch_size": 16,
    "targets": "y",
    "optimizer_config": {"type": "Adam"},
    "loss_fn_config": {"type": "MSELoss"},
}
GENERAL = {
    **BASE,
    "hsm_model": "general",
    "input_operator_count": 3,
    "output_operator_count": 1,
    "hilbert_space_dims": 2,
}
PAULI = {
    **BASE,
    "hsm_model": "pauli",
    "input_operator_count": 3,
    "output_operator_count": 1,
    "qubits_count": 2,
}


def error_of(cls: type[pydantic.BaseModel], **data: Any) -> str:
    with pytest.raises(pydantic.ValidationError) as caught:
        cls(**data)
    return str(caught.value)


def test_defaults_match_qcog_types() -> None:
    general = GeneralHSModelHyperparameters(**GENERAL)
    assert (general.beta, general.complex, general.eigh_eps) == (None, True, 1e-8)
    assert general.weighted_layer is False
    assert (general.split, general.seed, general.device) == (0.2, 42, "auto")
    assert (general.num_workers, general.pin_memory, general.input_features) == (0, False, None)
    assert general.scheduler_config is None
    assert general.early_stopping_config is None
    assert general.gradient_clipping_config is None
    assert general.optimizer_config.default_params == {}
    assert general.optimizer_config.group_params is None
    assert general.loss_fn_config.params == {}
    pauli = PauliHSModelHyperparameters(**PAULI)
    assert pauli.input_operator_pauli_weight is None
    assert pauli.output_operator_pauli_weight is None
    assert pauli.eigh_eps == 1e-8
    stopping = EarlyStoppingConfig(monitor="val_loss")
    assert (stopping.min_delta, stopping.patience, stopping.mode) == (0.0001, 10, "min")
    assert (stopping.verbose, stopping.restore_best_weights) == (False, True)
    assert GradientClippingConfig(max_norm=1.0).norm_type == 2.0
    assert SchedulerConfig(type="StepLR", params={"step_size": 1}).interval == "epoch"


def test_scheduler_params_are_required() -> None:
    assert "params" in error_of(SchedulerConfig, type="StepLR")


def test_per_group_params_are_required() -> None:
    message = error_of(PerGroupOptimizerParams, param_name_contains=["x"])
    assert "params" in message


def test_unknown_keys_are_ignored() -> None:
    model = GeneralHSModelHyperparameters(**GENERAL, not_a_field=1)
    assert "not_a_field" not in model.model_dump()


def test_target_is_an_unknown_key_as_in_qcog_types() -> None:
    # The guides' spelling: the public models require targets and ignore target.
    data = {k: v for k, v in GENERAL.items() if k != "targets"}
    with pytest.raises(pydantic.ValidationError) as refused:
        GeneralHSModelHyperparameters(**data, target="y")
    (problem,) = refused.value.errors()
    assert problem["loc"] == ("targets",) and problem["msg"] == "Field required"
    beside = GeneralHSModelHyperparameters(**GENERAL, target="z")
    assert beside.targets == GENERAL["targets"] and "target" not in beside.model_dump()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"device": "tpu"}, "Unsupported device: tpu. Must be 'auto', 'cpu', 'cuda', or 'mps'."),
        ({"targets": [], "output_operator_count": 0}, "At least one target must be specified."),
        ({"targets": ["y", "y"], "output_operator_count": 2}, "Target columns must be unique."),
        ({"input_features": []}, "If input_features is specified, it cannot be empty."),
        ({"input_features": ["a", "a"]}, "Input feature columns must be unique."),
        (
            {"input_features": ["a", "y"]},
            "Target columns and input feature columns cannot overlap. Overlapping columns: ['y']",
        ),
        ({"input_operator_count": 0}, "Input operator count must be greater than 0."),
        ({"output_operator_count": 0}, "Output operator count must be greater than 0."),
        ({"hilbert_space_dims": 0}, "Hilbert space dimension must be greater than 0."),
        (
            {"output_operator_count": 2},
            "Output operator count (2) must match the number of targets (1).",
        ),
    ],
)
def test_general_validator_messages(overrides: dict[str, Any], message: str) -> None:
    assert message in error_of(GeneralHSModelHyperparameters, **{**GENERAL, **overrides})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"qubits_count": 0}, "Quibts count must be greater than 0."),
        ({"input_operator_count": -1}, "Input operator count must be greater than 0."),
        ({"output_operator_count": 0}, "Output operator count must be greater than 0."),
        (
            {"input_operator_pauli_weight": 3},
            "Input Pauli weight cannot be greater than qubits count or less than 1.",
        ),
        (
            {"input_operator_pauli_weight": 0},
            "Input Pauli weight cannot be greater than qubits count or less than 1.",
        ),
        (
            {"output_operator_pauli_weight": 3},
            "Output Pauli weight cannot be greater than qubits count or less than 1.",
        ),
        (
            {"output_operator_count": 3},
            "Output operator count (3) must match the number of targets (1).",
        ),
        ({"device": "gpu"}, "Unsupported device: gpu."),
    ],
)
def test_pauli_validator_messages(overrides: dict[str, Any], message: str) -> None:
    assert message in error_of(PauliHSModelHyperparameters, **{**PAULI, **overrides})


def test_hsm_model_literal_per_class() -> None:
    assert "hsm_model" in error_of(
        GeneralHSModelHyperparameters, **{**GENERAL, "hsm_model": "pauli"}
    )
    assert GeneralHSModelHyperparameters(**{**GENERAL, "hsm_model": "general_fullenergy"})


def test_base_model_accepts_every_hsm_model() -> None:
    for name in ("general", "pauli", "general_fullenergy"):
        assert ModelHyperparameters(**BASE, hsm_model=name).hsm_model == name


@pytest.mark.parametrize(
    ("cls", "data", "field"),
    [
        (LossFunctionConfig, {"type": "Module"}, "loss_fn_config.type"),
        (LossFunctionConfig, {"type": "os.system"}, "loss_fn_config.type"),
        (LossFunctionConfig, {"type": "_Loss"}, "loss_fn_config.type"),
        (OptimizerConfig, {"type": "Optimizer"}, "optimizer_config.type"),
        (OptimizerConfig, {"type": "__import__"}, "optimizer_config.type"),
        (SchedulerConfig, {"type": "LRScheduler", "params": {}}, "scheduler_config.type"),
        (SchedulerConfig, {"type": "os.system", "params": {}}, "scheduler_config.type"),
    ],
)
def test_type_strings_resolve_only_to_classes_of_their_kind(
    cls: type[pydantic.BaseModel], data: dict[str, Any], field: str
) -> None:
    message = error_of(cls, **data)
    assert "Unknown" in message and field in message and "Valid names" in message


def test_sparse_adam_is_refused_with_the_reason() -> None:
    message = error_of(OptimizerConfig, type="SparseAdam")
    assert "sparse gradients" in message and "Adam" in message


@pytest.mark.parametrize("name", ["MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss"])
def test_real_losses_resolve(name: str) -> None:
    assert LossFunctionConfig(type=name).type == name


@pytest.mark.parametrize("name", ["StepLR", "ReduceLROnPlateau", "OneCycleLR", "CosineAnnealingLR"])
def test_real_schedulers_resolve(name: str) -> None:
    assert SchedulerConfig(type=name, params={}).type == name


def test_parse_dispatches_on_hsm_model() -> None:
    assert isinstance(parse_hyperparameters(GENERAL), GeneralHSModelHyperparameters)
    assert isinstance(parse_hyperparameters(PAULI), PauliHSModelHyperparameters)
    fullenergy = parse_hyperparameters({**GENERAL, "hsm_model": "general_fullenergy"})
    assert isinstance(fullenergy, GeneralHSModelHyperparameters)
    with pytest.raises(ValueError, match="Available types are: general, pauli, general_fullenergy"):
        parse_hyperparameters({**GENERAL, "hsm_model": "ensemble"})
    with pytest.raises(ValueError, match="Hyperparameters must be provided"):
        parse_hyperparameters({})


def test_the_qcog_types_stand_in_is_these_models() -> None:
    from qcog_types.pytorch_models import hyperparameters as public

    # The models, plus the guides' target= taken with a warning (test_platform_fidelity.py).
    assert issubclass(public.GeneralHSModelHyperparameters, GeneralHSModelHyperparameters)
    assert issubclass(public.PauliHSModelHyperparameters, PauliHSModelHyperparameters)
    assert public.OptimizerConfig is OptimizerConfig
    for name in public.__all__:
        assert getattr(public, name) is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, "epochs must be at least 1."),
        ({"batch_size": 0}, "batch_size must be at least 1."),
        ({"split": 0.0}, "split must be between 0 and 1 (exclusive)"),
        ({"split": 1.0}, "split must be between 0 and 1 (exclusive)"),
    ],
)
def test_values_that_can_never_train_are_rejected(overrides: dict[str, Any], message: str) -> None:
    text = error_of(GeneralHSModelHyperparameters, **{**GENERAL, **overrides})
    assert message in text and next(iter(overrides)) in text


def test_the_names_the_server_checks_are_the_installed_torchs_classes() -> None:
    # The server checks hyperparameter names without torch; a worker resolves them with it.
    assert set(registry.losses()) == names.LOSSES
    assert set(registry.optimizers()) == names.OPTIMIZERS
    assert set(registry.schedulers()) == names.SCHEDULERS
