"""The ``pytorch-models`` experiment: ``train`` and ``predict`` with the public contract.

``train(context, dataset_path, *, params)`` reads ``params["hyperparameters"]``, trains, and returns
``{"metrics": {...}}`` with the public experiment's metric names. The context is a mapping (or an
object) whose optional hooks connect the loop to a platform:

- ``load_last_checkpoint()`` — read once at start; training resumes from what it returns;
- ``save_checkpoint(model_state_dict=, current_epoch=, other_states=, hyperparameters=, metrics=)``
  — called after every epoch with the live state, as the public experiment does: a context must
  serialise it (or copy it) before training goes on;
- ``on_epoch_start(epoch)`` and ``on_epoch_end(epoch, metrics)`` — qcog-mock additions through which
  a platform charges simulated time, publishes live metrics, or ends the attempt by raising.

A checkpoint carries what the public experiment saves (model, optimizer, epoch, ``loss``) and, in
``other_states``, what it loses on resume: scheduler, early-stopping and RNG state, the loss
histories and the column names. A run stopped after any epoch and resumed therefore ends with
bit-identical weights and metrics to an uninterrupted one (wall-clock timings aside). Histories and
``best_val_loss`` cover the whole run, not only the last attempt.

Differences from the public experiment, all deliberate: the checkpoint of the epoch on which early
stopping fires is saved too; ``seed=0`` means 0 (not 42); training always runs on the CPU whatever
``device`` says.
"""

from __future__ import annotations

import copy
import io
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import pydantic
import torch
from torch import nn

from qcog_mock.trainer import data
from qcog_mock.trainer.components import (
    EarlyStopping,
    Scheduler,
    build_loss,
    build_optimizer,
    build_scheduler,
)
from qcog_mock.trainer.errors import ConfigurationError, DatasetError
from qcog_mock.trainer.hyperparameters import SupportedHyperparameters, parse_hyperparameters
from qcog_mock.trainer.layers import build_model

TRAIN_VERSION = "v0.0.1"
PREDICT_VERSION = "v0.0.1"
CHECKPOINT_METRICS = ["loss"]
# The metrics measured in wall time: the only ones that differ between two identical runs.
WALL_TIME_METRICS = frozenset({"total_training_time", "avg_epoch_time"})
CHECKPOINT_FORMAT = 1
_PREDICT_BATCH = 8192

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """What the run has done so far, across attempts."""

    epochs_completed: int = 0
    train_loss_history: list[float] = field(default_factory=list)
    val_loss_history: list[float] = field(default_factory=list)
    training_time: float = 0.0  # wall seconds spent in epochs, all attempts


def _hook(context: Any, name: str) -> Callable[..., Any] | None:
    hook = context.get(name) if isinstance(context, Mapping) else getattr(context, name, None)
    return hook if callable(hook) else None


def hyperparameters_from(params: Mapping[str, Any]) -> SupportedHyperparameters:
    """Validate ``params["hyperparameters"]``; errors become a ``ConfigurationError``."""
    raw = params.get("hyperparameters") if isinstance(params, Mapping) else None
    if isinstance(raw, SupportedHyperparameters):
        return raw  # already validated (the platform parses them once, at submission)
    if not raw:
        raise ConfigurationError("Hyperparameters must be provided")
    try:
        return parse_hyperparameters(raw)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'hyperparameters'}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigurationError(f"Invalid hyperparameters: {problems}") from None
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


def _seed(hp: SupportedHyperparameters) -> int:
    return 42 if hp.seed is None else hp.seed


def _check_location(context: Any, dataset_path: Any) -> None:
    bucket = context.get("dataset_bucket") if isinstance(context, Mapping) else None
    if str(dataset_path).startswith("s3://") or bucket == "s3":
        raise DatasetError(
            f"S3 datasets are not available offline ({dataset_path}); upload the CSV file instead."
        )


def _evaluate(model: nn.Module, loss_fn: nn.Module, table: data.Table) -> float:
    model.eval()
    with torch.no_grad():
        return float(loss_fn(model(table.inputs), table.outputs))


def _preflight(model: nn.Module, loss_fn: nn.Module, table: data.Table) -> None:
    """Apply the loss to two rows once, so a loss that cannot train fails before epoch 1."""
    with torch.no_grad():
        predictions = model(table.inputs[:2])
        try:
            value = loss_fn(predictions, table.outputs[:2])
        except (RuntimeError, TypeError, ValueError, IndexError) as error:
            raise ConfigurationError(
                f"loss_fn_config: {type(loss_fn).__name__} cannot compare predictions of shape "
                f"{tuple(predictions.shape)} with targets of shape "
                f"{tuple(table.outputs[:2].shape)}: {error}"
            ) from None
    if value.dim() != 0:
        raise ConfigurationError(
            f"loss_fn_config: {type(loss_fn).__name__} must reduce to a single number; "
            "remove reduction='none' from its params."
        )


def _check_device(device: str, gpu_instance: bool) -> None:
    """An explicit device torch cannot use here fails, as the experiment's ``.to(device)`` would;
    ``auto`` and ``cpu`` train on the CPU, and so does ``cuda`` where the platform would have
    given the run a GPU (the run's notes say so)."""
    if device in ("auto", "cpu") or (device == "cuda" and gpu_instance):
        return
    try:
        torch.zeros(1).to(device)
    except (AssertionError, RuntimeError) as error:
        raise ConfigurationError(
            f"device: {device!r} is not available: {type(error).__name__}: {error}. Hint: this "
            "instance has no such device; use device='cpu' or 'auto'."
        ) from None
    logger.info("device=%r: qcog-mock trains on the CPU.", device)


def train(
    context: Any, dataset_path: Any, *, params: dict[str, Any], gpu_instance: bool = False
) -> dict[str, Any]:
    hp = hyperparameters_from(params)
    _check_device(hp.device, gpu_instance)
    _check_location(context, dataset_path)

    frame = data.read_csv(dataset_path)
    features, targets = data.select_columns(frame, hp.targets_list, hp.input_features)
    table = data.to_table(frame, features, targets)
    data.check_operator_counts(table, hp.input_operator_count, hp.output_operator_count)

    # One generator, drawn in a fixed order: split, initial weights, then each epoch's shuffle.
    generator = torch.Generator().manual_seed(_seed(hp))
    train_set, val_set = data.split(table, hp.split, generator)
    model = build_model(hp, generator)
    loss_fn = build_loss(hp.loss_fn_config)
    optimizer = build_optimizer(model, hp.optimizer_config)
    scheduler = build_scheduler(optimizer, hp.scheduler_config) if hp.scheduler_config else None
    stopper = EarlyStopping(hp.early_stopping_config) if hp.early_stopping_config else None
    _preflight(model, loss_fn, val_set)

    progress = Progress()
    load = _hook(context, "load_last_checkpoint")
    checkpoint = load() if load else None
    if checkpoint:
        progress = _restore(checkpoint, model, optimizer, scheduler, stopper, generator)
        logger.info("Resuming from epoch %d.", progress.epochs_completed)

    loop = _Loop(hp, model, loss_fn, optimizer, scheduler, stopper, generator, context)
    for epoch in range(progress.epochs_completed + 1, hp.epochs + 1):
        if stopper is not None and stopper.should_stop:
            break
        loop.run_epoch(epoch, train_set, val_set, progress, features, targets)

    if stopper is not None and hp.early_stopping_config.restore_best_weights:  # type: ignore[union-attr]
        stopper.restore_weights(model)
    history = progress.train_loss_history
    return {
        "metrics": {
            "test_loss": _evaluate(model, loss_fn, val_set),
            "train_loss_history": list(history),
            "val_loss_history": list(progress.val_loss_history),
            "final_train_loss": history[-1] if history else None,
            "final_val_loss": progress.val_loss_history[-1] if history else None,
            "epochs_completed": progress.epochs_completed,
            "best_val_loss": min(progress.val_loss_history) if history else None,
            "train_dataset_size": len(train_set),
            "val_dataset_size": len(val_set),
            "total_training_time": progress.training_time,
            "avg_epoch_time": progress.training_time / len(history) if history else 0.0,
            "checkpoint_metrics": list(CHECKPOINT_METRICS),
        }
    }


@dataclass
class _Loop:
    hp: SupportedHyperparameters
    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler | None
    stopper: EarlyStopping | None
    generator: torch.Generator
    context: Any

    def _step(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        clipping = self.hp.gradient_clipping_config

        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            loss = self.loss_fn(self.model(inputs), targets)
            loss.backward()
            if clipping is not None:
                nn.utils.clip_grad_norm_(
                    self.model.parameters(), clipping.max_norm, clipping.norm_type
                )
            return loss

        if isinstance(self.optimizer, torch.optim.LBFGS):  # re-evaluates the loss itself
            loss = self.optimizer.step(closure)
        else:
            loss = closure()
            self.optimizer.step()
        return loss.item()

    def run_epoch(
        self,
        epoch: int,
        train_set: data.Table,
        val_set: data.Table,
        progress: Progress,
        features: list[str],
        targets: list[str],
    ) -> None:
        if start := _hook(self.context, "on_epoch_start"):
            start(epoch)
        began = time.perf_counter()
        self.model.train()
        losses = []
        for inputs, outputs in data.batches(train_set, self.hp.batch_size, self.generator):
            losses.append(self._step(inputs, outputs))
            if self.scheduler is not None:
                self.scheduler.after_batch()
        train_loss = math.fsum(losses) / len(losses)
        val_loss = _evaluate(self.model, self.loss_fn, val_set)
        metrics = {"train_loss": train_loss, "val_loss": val_loss}

        progress.epochs_completed = epoch
        progress.train_loss_history.append(train_loss)
        progress.val_loss_history.append(val_loss)
        if self.scheduler is not None:
            self.scheduler.after_epoch(metrics)
        if self.stopper is not None:
            self.stopper(metrics[self.stopper.config.monitor], self.model, epoch)
        progress.training_time += time.perf_counter() - began
        logger.info("epoch %d: train_loss=%.6f val_loss=%.6f", epoch, train_loss, val_loss)

        if save := _hook(self.context, "save_checkpoint"):
            save(**self._checkpoint(epoch, train_loss, progress, features, targets))
        if end := _hook(self.context, "on_epoch_end"):
            end(epoch, dict(metrics))

    def _checkpoint(
        self,
        epoch: int,
        train_loss: float,
        progress: Progress,
        features: list[str],
        targets: list[str],
    ) -> dict[str, Any]:
        scheduler = self.scheduler.scheduler.state_dict() if self.scheduler else None
        return {
            "model_state_dict": self.model.state_dict(),
            "current_epoch": epoch,
            "other_states": {
                "optimizer_state_dict": self.optimizer.state_dict(),
                "loss": train_loss,
                "scheduler_state_dict": scheduler,
                "early_stopping_state": self.stopper.state_dict() if self.stopper else None,
                "rng_state": self.generator.get_state(),
                "progress": asdict(progress),
                "input_features": list(features),
                "targets": list(targets),
                "format": CHECKPOINT_FORMAT,
            },
            "hyperparameters": self.hp.model_dump(),
            "metrics": {"loss": train_loss},
        }


def _restore(
    checkpoint: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Scheduler | None,
    stopper: EarlyStopping | None,
    generator: torch.Generator,
) -> Progress:
    """Load a checkpoint into freshly built objects; returns the run's progress."""
    other = checkpoint.get("other_states") or {}
    try:
        model.load_state_dict(checkpoint["model_state_dict"])
        optimizer_state = other.get("optimizer_state_dict") or checkpoint.get(
            "optimizer_state_dict"
        )
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)
        if scheduler is not None and other.get("scheduler_state_dict") is not None:
            scheduler.scheduler.load_state_dict(other["scheduler_state_dict"])
    except (KeyError, RuntimeError, ValueError) as error:
        raise ConfigurationError(
            f"The run's last checkpoint does not fit these hyperparameters: {error}"
        ) from None
    if stopper is not None and other.get("early_stopping_state") is not None:
        stopper.load_state_dict(other["early_stopping_state"])
    if other.get("rng_state") is not None:
        generator.set_state(other["rng_state"])
    if other.get("progress") is not None:
        return Progress(**copy.deepcopy(other["progress"]))
    # A checkpoint from the public experiment: only the epoch count is known.
    return Progress(epochs_completed=int(checkpoint.get("current_epoch", 0)))


def predict(
    context: Any, checkpoint: Mapping[str, Any], *, params: dict[str, Any]
) -> dict[str, Any]:
    """Predictions of a checkpoint's model on a CSV given as ``dataset_path`` or ``dataset_buffer``.

    As the public ``predict``: every column is an input, read by position as float32. A wrong
    column count is an error with a hint; names that differ from the training features are
    reported in ``notes``. Returns ``{"predictions": [[...], ...], "notes": [...]}``, one list of
    ``output_operator_count`` values per row.
    """
    path, buffer = params.get("dataset_path"), params.get("dataset_buffer")
    if path:
        source = path
    elif buffer is not None:
        source = io.StringIO(buffer) if isinstance(buffer, str) else buffer
    else:
        raise ValueError("Dataset path or buffer must be provided")
    if not checkpoint or "model_state_dict" not in checkpoint:
        raise ConfigurationError("The checkpoint has no model_state_dict.")
    hp = hyperparameters_from({"hyperparameters": checkpoint.get("hyperparameters")})
    model = build_model(hp)
    model.load_state_dict(checkpoint["model_state_dict"])
    model.eval()

    frame = data.read_csv(source)
    other = checkpoint.get("other_states") or {}
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    notes = data.positional_columns(
        columns, other.get("input_features"), other.get("targets") or [], hp.input_operator_count
    )
    inputs = data.input_tensor(frame, columns)
    with torch.no_grad():
        predictions = torch.cat([model(chunk) for chunk in inputs.split(_PREDICT_BATCH)])
    return {"predictions": predictions.tolist(), "notes": notes}
