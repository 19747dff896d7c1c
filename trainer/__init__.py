"""The ``pytorch-models`` experiment: real Hilbert Space Model training with the public contract.

from qcog_mock.trainer import train, predict
"""

from qcog_mock.trainer.errors import ConfigurationError, DatasetError, ExperimentError
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
