"""Helpers shared by the trainer tests."""

from __future__ import annotations

import copy
from typing import Any

from qcog_mock.trainer.synthetic import TARGET


def hyperparameters(**overrides: Any) -> dict[str, Any]:
    """A General HSM configuration for ``small_csv``, as a plain dict."""
    params: dict[str, Any] = {
        "hsm_model": "general",
        "epochs": 4,
        "batch_size": 128,
        "seed": 5,
        "targets": TARGET,
        "input_operator_count": 8,
        "output_operator_count": 1,
        "hilbert_space_dims": 4,
        "optimizer_config": {"type": "Adam", "default_params": {"lr": 0.01}},
        "loss_fn_config": {"type": "MSELoss", "params": {}},
    }
    params.update(overrides)
    return params


class Recorder:
    """A platform context that keeps every checkpoint and epoch report in memory."""

    __test__ = False

    def __init__(self, resume_from: dict[str, Any] | None = None) -> None:
        self.checkpoints: list[dict[str, Any]] = []
        self.started: list[int] = []
        self.ended: list[tuple[int, dict[str, float]]] = []
        self.resume_from = resume_from

    def load_last_checkpoint(self) -> dict[str, Any] | None:
        return self.resume_from

    def save_checkpoint(self, **checkpoint: Any) -> None:
        # The trainer hands over live state; a context that keeps it must copy it.
        self.checkpoints.append(copy.deepcopy(checkpoint))

    def on_epoch_start(self, epoch: int) -> None:
        self.started.append(epoch)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.ended.append((epoch, metrics))
