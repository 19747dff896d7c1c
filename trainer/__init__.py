"""The ``pytorch-models`` experiment: real Hilbert Space Model training with the public contract.

from trainer import train, predict
"""

from trainer.errors import ConfigurationError, DatasetError, ExperimentError
from trainer.experiment import PREDICT_VERSION, TRAIN_VERSION, predict, train

__all__ = [
    "PREDICT_VERSION",
    "TRAIN_VERSION",
    "ConfigurationError",
    "DatasetError",
    "ExperimentError",
    "predict",
    "train",
]
