"""Errors the experiment raises on purpose.

    ExperimentError
    ├── DatasetError         the data cannot train this model (missing column, count mismatch, …)
    └── ConfigurationError   the hyperparameters cannot be instantiated (bad optimizer kwargs, …)

Both would repeat identically on every attempt, so a platform fails the run at once instead of
retrying (``retryable = False``). Both are ``ValueError``s, as in the public experiment.
"""

from __future__ import annotations


class ExperimentError(ValueError):
    retryable = False


class DatasetError(ExperimentError):
    pass


class ConfigurationError(ExperimentError):
    pass
