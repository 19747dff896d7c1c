"""The ``type`` names the hyperparameters may give, checked without torch.

The server validates a submission by these names; only a worker resolves them to torch classes
(``registry.py``). They are the classes torch 2.13 exports of each kind, and a test holds them
to the installed torch's own tables.
"""

from __future__ import annotations

from collections.abc import Iterable

LOSSES = frozenset(
    {
        "BCELoss", "BCEWithLogitsLoss", "CTCLoss", "CosineEmbeddingLoss", "CrossEntropyLoss",
        "GaussianNLLLoss", "HingeEmbeddingLoss", "HuberLoss", "KLDivLoss", "L1Loss",
        "LinearCrossEntropyLoss", "MSELoss", "MarginRankingLoss", "MultiLabelMarginLoss",
        "MultiLabelSoftMarginLoss", "MultiMarginLoss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss",
        "SmoothL1Loss", "SoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
    }
)  # fmt: skip
OPTIMIZERS = frozenset(
    {
        "ASGD", "Adadelta", "Adafactor", "Adagrad", "Adam", "AdamW", "Adamax", "LBFGS", "Muon",
        "NAdam", "RAdam", "RMSprop", "Rprop", "SGD",
    }
)  # fmt: skip
SCHEDULERS = frozenset(
    {
        "ChainedScheduler", "ConstantLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
        "CyclicLR", "ExponentialLR", "LambdaLR", "LinearLR", "MultiStepLR", "MultiplicativeLR",
        "OneCycleLR", "PolynomialLR", "ReduceLROnPlateau", "SequentialLR", "StepLR",
    }
)  # fmt: skip

# Optimizers whose contract the training loop cannot meet.
UNSUPPORTED_OPTIMIZERS = {
    "SparseAdam": "SparseAdam needs sparse gradients, which Hilbert Space Models do not produce",
}

_KINDS = {
    # kind: (the field, torch's namespace, the names, examples)
    "loss function": ("loss_fn_config.type", "torch.nn", LOSSES, "'MSELoss' or 'L1Loss'"),
    "optimizer": ("optimizer_config.type", "torch.optim", OPTIMIZERS, "'Adam' or 'SGD'"),
    "scheduler": (
        "scheduler_config.type",
        "torch.optim.lr_scheduler",
        SCHEDULERS,
        "'StepLR' or 'ReduceLROnPlateau'",
    ),
}


def check(kind: str, name: str) -> str:
    """``name`` if it names a class of ``kind``; else a ``ValueError`` naming the field, an
    example and every valid name."""
    field, namespace, names, examples = _KINDS[kind]
    if kind == "optimizer" and name in UNSUPPORTED_OPTIMIZERS:
        raise ValueError(
            f"{field} '{name}' is not supported: {UNSUPPORTED_OPTIMIZERS[name]}. "
            "Use 'Adam' or 'AdamW' instead."
        )
    if name not in names:
        article = "an" if kind[0] in "aeiou" else "a"
        guess = closest(name, names)
        hint = f"Did you mean '{guess}'? " if guess else ""
        raise ValueError(
            f"Unknown {kind} '{name}'. {hint}{field} must name {article} {kind} class in "
            f"{namespace}, such as {examples}. Valid names: {sorted(names)}"
        )
    return name


def closest(name: str, names: Iterable[str]) -> str | None:
    """The valid name ``name`` most likely meant: the same but for case, else the nearest
    spelling, else the one it begins (``MSE`` for ``MSELoss``); None if nothing is near."""
    import difflib

    choices = sorted(names)
    folded = {choice.lower(): choice for choice in choices}
    if name.lower() in folded:
        return folded[name.lower()]
    near = difflib.get_close_matches(name.lower(), list(folded), n=1, cutoff=0.75)
    if near:
        return folded[near[0]]
    starts = [choice for choice in choices if name and choice.lower().startswith(name.lower())]
    return starts[0] if len(starts) == 1 else None
