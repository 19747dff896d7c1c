"""Resolve the ``type`` strings of the hyperparameters to torch classes, and nothing else (in a
worker: the names themselves are checked by ``names.py``, without torch).

A name resolves only to a class of the expected kind that torch exports under that exact name:
``"MSELoss"`` to ``torch.nn.MSELoss``, but ``"Module"``, ``"os.system"`` or ``"_Loss"`` to a
``ValueError`` naming the field and listing valid names.
"""

from __future__ import annotations

import functools

import torch

from qcog_mock.trainer import names


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
        torch.optim, torch.optim.Optimizer, exclude={"Optimizer", *names.UNSUPPORTED_OPTIMIZERS}
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


def _resolve(kind: str, name: str, table: dict[str, type]) -> type:
    names.check(kind, name)
    cls = table.get(name)
    if cls is None:  # a name of torch 2.13 that an older torch does not have
        raise ValueError(f"The {kind} '{name}' is not in this worker's torch {torch.__version__}.")
    return cls


def loss_class(name: str) -> type[torch.nn.Module]:
    return _resolve("loss function", name, losses())


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    return _resolve("optimizer", name, optimizers())


def scheduler_class(name: str) -> type:
    return _resolve("scheduler", name, schedulers())
