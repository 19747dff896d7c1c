"""``qcog_types.pytorch_models.hyperparameters``, provided by qcog-mock's ``trainer``.

One kept difference (README, Fidelity): the real package refuses the platform guides' spelling
``target=`` (``ValidationError: targets Field required``). The stand-in accepts it, with a
``UserWarning`` that says what the real package does, so that the guides run verbatim against
the emulator and nobody is surprised when they later meet the real one.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, model_validator

from qcog_mock.trainer import hyperparameters as _exact
from qcog_mock.trainer.hyperparameters import (
    EarlyStoppingConfig,
    GradientClippingConfig,
    LossFunctionConfig,
    ModelHyperparameters,
    OptimizerConfig,
    PerGroupOptimizerParams,
    SchedulerConfig,
)

TARGET_WARNING = (
    "target= is the platform guides' spelling: the real qcog_types refuses it "
    "(ValidationError: targets Field required). qcog-mock's stand-in takes it as targets= so "
    "that the guides run verbatim; write targets= to run against the real package."
)


class _GuidesTarget(BaseModel):
    """Takes the guides' ``target=`` as ``targets=``, warning that the real package would not."""

    @model_validator(mode="before")
    @classmethod
    def _accept_guides_target(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" in data and "targets" not in data:
            warnings.warn(TARGET_WARNING, UserWarning, stacklevel=3)
            data = {**data, "targets": data["target"]}
        return data


class GeneralHSModelHyperparameters(_GuidesTarget, _exact.GeneralHSModelHyperparameters):
    __doc__ = _exact.GeneralHSModelHyperparameters.__doc__


class PauliHSModelHyperparameters(_GuidesTarget, _exact.PauliHSModelHyperparameters):
    __doc__ = _exact.PauliHSModelHyperparameters.__doc__


SupportedHyperparameters = GeneralHSModelHyperparameters | PauliHSModelHyperparameters

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
