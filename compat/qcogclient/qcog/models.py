"""The hyperparameter models under the import path one platform guide uses."""

from qcog_types.pytorch_models.hyperparameters import *  # noqa: F403
from qcog_types.pytorch_models.hyperparameters import __all__  # noqa: F401
