"""Inferences, computed in a worker as attempts are: the server never loads a model.

A worker keeps the last few checkpoints it loaded, keyed by the file's identity (its path, inode,
size and modification time). Ids restart after a reset, and a checkpoint written again under an
old name is a new key, so a cached model is never the wrong one. Like ``worker.py``, this
imports no server module but the files.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CACHED_MODELS = 8


@dataclass(frozen=True)
class InferenceJob:
    """Plain values, so that it pickles to any executor."""

    data_root: str
    run_id: str
    checkpoint: str
    text: str  # the CSV
    torch_threads: int = 1


@dataclass(frozen=True)
class Inference:
    """Predictions, one list a row, and notes on the columns; or the experiment's refusal of
    the data (``error``: an ``ExperimentError``'s message)."""

    predictions: list[list[float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None


_loaded: OrderedDict[tuple[str, int, int, int], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()  # a Dask worker runs tasks in threads


def run_inference(job: InferenceJob) -> Inference:
    import torch

    from qcog_mock.trainer import ExperimentError, predict

    torch.set_num_threads(job.torch_threads)
    checkpoint = _checkpoint(job)
    try:
        result = predict({}, checkpoint, params={"dataset_buffer": job.text})
    except ExperimentError as error:
        return Inference(error=str(error))
    return Inference(result["predictions"], list(result["notes"]))


def _checkpoint(job: InferenceJob) -> dict[str, Any]:
    from qcog_mock.mockserver.files import Files

    files = Files(Path(job.data_root), create=False)
    path = files.checkpoint(job.run_id, job.checkpoint)
    found = path.stat()
    identity = (str(path), found.st_ino, found.st_size, found.st_mtime_ns)
    with _lock:
        if identity in _loaded:
            _loaded.move_to_end(identity)
            return _loaded[identity]
    checkpoint = files.load_checkpoint(job.run_id, job.checkpoint)
    with _lock:
        _loaded[identity] = checkpoint
        while len(_loaded) > CACHED_MODELS:
            _loaded.popitem(last=False)
    return checkpoint
