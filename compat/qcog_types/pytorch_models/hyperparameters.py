"""``qcog_types.pytorch_models.hyperparameters``, provided by qcog-mock's ``trainer``."""

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
    SupportedHyperparameters,
)

__all__ = [
    "EarlyStoppingConfig",
    "GeneralHSModelHyperparameters",
    "GradientClippingConfig",
    "LossFunctionConfig",
    "ModelHyperparameters",
    "OptimizerConfig",
    "PauliHSModelHyperparameters",
    "PerGroupOptimizerParams",
    "SchedulerConfig",
    "SupportedHyperparameters",
]
