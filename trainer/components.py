"""Optimizer, loss, scheduler and early stopping, built from the hyperparameters.

Rules kept from the public experiment:

- optimizer groups: each ``group_params`` spec, in order, takes every parameter whose name contains
  any of its substrings and that no earlier spec took (first match wins); the rest form one last
  group with ``default_params``. Groups do not inherit ``default_params`` (a group without ``lr``
  gets the optimizer class's default).
- the optimizer is ``torch.optim.<type>(param_groups)`` with no other keyword: an unknown key in
  a group is kept silently, as torch keeps it.
- the loss is ``torch.nn.<type>(**params)`` and the scheduler
  ``torch.optim.lr_scheduler.<type>(optimizer, **params)``, params passed unchanged: what torch
  refuses (a list for a loss ``weight``, ``monitor`` for ``ReduceLROnPlateau``) fails as on the
  platform. ``ReduceLROnPlateau`` steps on ``val_loss`` once per epoch; other schedulers step once
  per epoch, or once per batch with ``interval="step"`` (which the public experiment accepts but
  never steps).
- early stopping: an improvement is ``value < best − min_delta`` (``mode="min"``) or
  ``value > best + min_delta`` (``"max"``); after ``patience`` epochs without one, training stops.

Every constructor error becomes a ``ConfigurationError`` (not retried) with torch's message, the
hyperparameter field and a hint of the fix.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from qcog_mock.trainer import registry
from qcog_mock.trainer.errors import ConfigurationError
from qcog_mock.trainer.hyperparameters import (
    EarlyStoppingConfig,
    LossFunctionConfig,
    OptimizerConfig,
    SchedulerConfig,
)

logger = logging.getLogger(__name__)

EPOCH_METRICS = ("train_loss", "val_loss")


def param_groups(model: nn.Module, config: OptimizerConfig) -> list[dict[str, Any]]:
    named = list(model.named_parameters())
    taken: set[str] = set()
    groups: list[dict[str, Any]] = []
    for spec in config.group_params or []:
        chosen = [
            (name, p)
            for name, p in named
            if name not in taken and any(part in name for part in spec.param_name_contains)
        ]
        if not chosen:
            logger.warning("Optimizer group %s matches no parameter.", spec.param_name_contains)
            continue
        taken.update(name for name, _ in chosen)
        groups.append({"params": [p for _, p in chosen], **spec.params})
    rest = [p for name, p in named if name not in taken]
    if rest:
        groups.append({"params": rest, **config.default_params})
    return groups


def _construct(field: str, hint: str, cls: type, *args: Any, **kwargs: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ConfigurationError(
            f"{field}: {cls.__name__} could not be built: {type(error).__name__}: {error}. "
            f"Hint: {hint}"
        ) from None


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    cls = registry.optimizer_class(config.type)
    hint = f"give {cls.__name__}'s own parameters in default_params and group params."
    return _construct("optimizer_config", hint, cls, param_groups(model, config))


def build_loss(config: LossFunctionConfig) -> nn.Module:
    cls = registry.loss_class(config.type)
    hint = (
        f"params go to torch.nn.{cls.__name__} unchanged; a tensor parameter such as weight "
        "cannot be given as a JSON list — leave it out."
    )
    return _construct("loss_fn_config", hint, cls, **config.params)


def _check_monitor(monitor: str, message: str) -> None:
    if monitor not in EPOCH_METRICS:
        raise ConfigurationError(f"{message} Available metrics: {list(EPOCH_METRICS)}")


@dataclass
class Scheduler:
    """A torch scheduler and the rule for when to step it."""

    scheduler: Any
    interval: str
    monitor: str | None  # set for ReduceLROnPlateau only

    def after_batch(self) -> None:
        if self.interval == "step" and self.monitor is None:
            self.scheduler.step()

    def after_epoch(self, metrics: dict[str, float]) -> None:
        if self.monitor is not None:
            self.scheduler.step(metrics[self.monitor])
        elif self.interval == "epoch":
            self.scheduler.step()


def build_scheduler(optimizer: torch.optim.Optimizer, config: SchedulerConfig) -> Scheduler:
    cls = registry.scheduler_class(config.type)
    plateau = cls is torch.optim.lr_scheduler.ReduceLROnPlateau
    hint = (
        "remove monitor: the experiment passes every param to ReduceLROnPlateau, which steps "
        "on val_loss."
        if plateau and "monitor" in config.params
        else f"params go to {cls.__name__} unchanged; give only its own parameters."
    )
    scheduler = _construct("scheduler_config", hint, cls, optimizer, **config.params)
    return Scheduler(scheduler, config.interval, "val_loss" if plateau else None)


class EarlyStopping:
    """Stops training after ``patience`` epochs without improvement; remembers the best weights."""

    def __init__(self, config: EarlyStoppingConfig) -> None:
        _check_monitor(
            config.monitor,
            f"early_stopping_config.monitor: Metric '{config.monitor}' "
            "for early stopping not found.",
        )
        self.config = config
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.counter = 0
        self.should_stop = False

    def __call__(self, value: float, model: nn.Module, epoch: int) -> None:
        c = self.config
        if self.best is None:
            improved = True
        elif c.mode == "min":
            improved = value < self.best - c.min_delta
        else:
            improved = value > self.best + c.min_delta
        if improved:
            self.best, self.best_epoch, self.counter = value, epoch, 0
            if c.restore_best_weights:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.counter += 1
            if self.counter >= c.patience:
                self.should_stop = True
        if c.verbose:
            logger.info(
                "Early stopping: epoch %d %s=%.6g best=%.6g counter=%d/%d",
                epoch,
                c.monitor,
                value,
                self.best,
                self.counter,
                c.patience,
            )

    def restore_weights(self, model: nn.Module) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "counter": self.counter,
            "should_stop": self.should_stop,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.best_state = state["best_state"]
        self.counter = state["counter"]
        self.should_stop = state["should_stop"]
