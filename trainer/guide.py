"""The long-running-jobs guide's example configuration, as the platform's docs write it.

77 input columns and the target ``scaled_demedian_forward_return_22d``, a complex General HSM with
N = 4, Adam with the input diagonals at a tenth of the learning rate, StepLR, early stopping and
gradient clipping. Demos and benchmarks start from this and say what they change.
"""

from __future__ import annotations

from typing import Any

from qcog_mock.trainer.synthetic import TARGET


def guide_hyperparameters(**overrides: Any) -> dict[str, Any]:
    """The guide's hyperparameters as a dict; top-level keys in ``overrides`` replace its own."""
    hyperparameters: dict[str, Any] = {
        "hsm_model": "general",
        "epochs": 100,
        "batch_size": 2000,
        "seed": 24,
        "targets": TARGET,
        "device": "cpu",
        "input_operator_count": 77,
        "output_operator_count": 1,
        "hilbert_space_dims": 4,
        "complex": True,
        "split": 0.2,
        "optimizer_config": adam(0.001),
        "loss_fn_config": {"type": "MSELoss", "params": {}},
        "scheduler_config": {"type": "StepLR", "params": {"step_size": 3, "gamma": 0.5}},
        "early_stopping_config": {
            "monitor": "val_loss",
            "patience": 3,
            "mode": "min",
            "min_delta": 0.0001,
            "verbose": True,
            "restore_best_weights": True,
        },
        "gradient_clipping_config": {"max_norm": 1.0, "norm_type": 2},
    }
    hyperparameters.update(overrides)
    return hyperparameters


def adam(lr: float) -> dict[str, Any]:
    """The guide's optimizer: Adam at ``lr``, the input diagonals at 1e-4 without weight decay."""
    return {
        "type": "Adam",
        "default_params": {"lr": lr},
        "group_params": [
            {"param_name_contains": ["input_diag"], "params": {"lr": 1e-4, "weight_decay": 0}}
        ],
    }
