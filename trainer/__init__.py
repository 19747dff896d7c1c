"""The ``pytorch-models`` experiment: real Hilbert Space Model training with the public contract.

from qcog_mock.trainer import train, predict

``train`` and ``predict`` import torch when first named: the server imports the trainer's
hyperparameters and errors, never torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qcog_mock.trainer.errors import ConfigurationError, DatasetError, ExperimentError

if TYPE_CHECKING:
    from qcog_mock.trainer.experiment import PREDICT_VERSION, TRAIN_VERSION, predict, train

__all__ = [
    "PREDICT_VERSION",
    "TRAIN_VERSION",
    "ConfigurationError",
    "DatasetError",
    "ExperimentError",
    "predict",
    "train",
]


def __getattr__(name: str) -> Any:
    if name in ("PREDICT_VERSION", "TRAIN_VERSION", "predict", "train"):
        from qcog_mock.trainer import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
