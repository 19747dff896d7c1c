"""Dataset and checkpoint files beside the database.

    <data dir>/datasets/<dataset id>.csv
    <data dir>/checkpoints/<run id>/<checkpoint name>.pt

Checkpoints are written to a temporary name and renamed, so a crash never leaves half a file, and
read back with ``torch.load(weights_only=True)``: only tensors and plain containers, never code.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch


class Files:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "datasets").mkdir(parents=True, exist_ok=True)
        (root / "checkpoints").mkdir(parents=True, exist_ok=True)

    def dataset(self, dataset_id: str) -> Path:
        return self.root / "datasets" / f"{dataset_id}.csv"

    def checkpoint(self, run_id: str, name: str) -> Path:
        return self.root / "checkpoints" / run_id / f"{name}.pt"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def save_checkpoint(self, run_id: str, name: str, checkpoint: dict[str, Any]) -> Path:
        path = self.checkpoint(run_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        torch.save(checkpoint, partial)
        os.replace(partial, path)
        return path

    def load_checkpoint(self, run_id: str, name: str) -> dict[str, Any]:
        return torch.load(self.checkpoint(run_id, name), weights_only=True)

    def delete_run(self, run_id: str) -> None:
        shutil.rmtree(self.root / "checkpoints" / run_id, ignore_errors=True)

    def clear(self) -> None:
        for folder in ("datasets", "checkpoints"):
            shutil.rmtree(self.root / folder, ignore_errors=True)
            (self.root / folder).mkdir(parents=True)
