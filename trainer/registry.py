"""Resolve the ``type`` strings of the hyperparameters to torch classes, and nothing else.

A name resolves only to a class of the expected kind that torch exports under that exact name:
``"MSELoss"`` to ``torch.nn.MSELoss``, but ``"Module"``, ``"os.system"`` or ``"_Loss"`` to a
``ValueError`` naming the field and listing valid names.
"""

from __future__ import annotations

import functools

import torch

# Optimizers whose contract the training loop cannot meet.
_UNSUPPORTED_OPTIMIZERS = {
    "SparseAdam": "SparseAdam needs sparse gradients, which Hilbert Space Models do not produce",
}


def _classes(namespace: object, base: type, exclude: set[str]) -> dict[str, type]:
    found = {}
    for name in dir(namespace):
        obj = getattr(namespace, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, base)
            and not name.startswith("_")
            and name not in exclude
        ):
            found[name] = obj
    return found


@functools.cache
def losses() -> dict[str, type[torch.nn.Module]]:
    return _classes(torch.nn, torch.nn.modules.loss._Loss, exclude=set())


@functools.cache
def optimizers() -> dict[str, type[torch.optim.Optimizer]]:
    return _classes(
        torch.optim, torch.optim.Optimizer, exclude={"Optimizer", *_UNSUPPORTED_OPTIMIZERS}
    )


@functools.cache
def schedulers() -> dict[str, type]:
    found = _classes(
        torch.optim.lr_scheduler,
        torch.optim.lr_scheduler.LRScheduler,
        exclude={"LRScheduler"},
    )
    # ReduceLROnPlateau is not an LRScheduler subclass in every supported torch version.
    found["ReduceLROnPlateau"] = torch.optim.lr_scheduler.ReduceLROnPlateau
    return found


def _resolve(kind: str, field: str, name: str, table: dict[str, type], examples: str) -> type:
    cls = table.get(name)
    if cls is None:
        raise ValueError(
            f"Unknown {kind} '{name}': {field} must name a {kind} class in "
            f"{_NAMESPACES[kind]}, such as {examples}. Valid names: {sorted(table)}"
        )
    return cls


_NAMESPACES = {
    "loss function": "torch.nn",
    "optimizer": "torch.optim",
    "scheduler": "torch.optim.lr_scheduler",
}


def loss_class(name: str) -> type[torch.nn.Module]:
    return _resolve("loss function", "loss_fn_config.type", name, losses(), "'MSELoss' or 'L1Loss'")


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    if name in _UNSUPPORTED_OPTIMIZERS:
        raise ValueError(
            f"optimizer_config.type '{name}' is not supported: "
            f"{_UNSUPPORTED_OPTIMIZERS[name]}. Use 'Adam' or 'AdamW' instead."
        )
    return _resolve("optimizer", "optimizer_config.type", name, optimizers(), "'Adam' or 'SGD'")


def scheduler_class(name: str) -> type:
    return _resolve(
        "scheduler", "scheduler_config.type", name, schedulers(), "'StepLR' or 'ReduceLROnPlateau'"
    )
