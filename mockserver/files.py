"""Dataset and checkpoint files beside the database, and the intake of CSV uploads.

    <data dir>/datasets/<dataset id>.csv
    <data dir>/checkpoints/<run id>/<checkpoint name>.pt

Checkpoints are written to a temporary name and renamed, so a crash never leaves half a file, and
read back with ``torch.load(weights_only=True)``: only tensors and plain containers, never code.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from qcog_mock.mockserver.errors import Invalid, PayloadTooLarge


class Files:
    def __init__(self, root: Path, *, create: bool = True) -> None:
        """``create``: make the folders. A worker does not: it writes only into a data dir that
        exists, never re-creating one its platform has removed."""
        self.root = root
        if create:
            (root / "datasets").mkdir(mode=0o700, parents=True, exist_ok=True)
            (root / "checkpoints").mkdir(mode=0o700, parents=True, exist_ok=True)

    def dataset(self, dataset_id: str) -> Path:
        return self.root / "datasets" / f"{dataset_id}.csv"

    def credentials(self, dataset_id: str) -> Path:
        return self.root / "datasets" / f"{dataset_id}.credentials.json"

    def keep_credentials(self, dataset_id: str, credentials: dict[str, Any]) -> None:
        """An S3 dataset's credentials: kept beside its data (owner-only), never in a document,
        so that no answer can show them."""
        path = self.credentials(dataset_id)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            json.dump(credentials, stream)

    def checkpoint(self, run_id: str, name: str) -> Path:
        return self.root / "checkpoints" / run_id / f"{name}.pt"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def save_checkpoint(self, run_id: str, name: str, checkpoint: dict[str, Any]) -> Path:
        path = self.checkpoint(run_id, name)
        path.parent.mkdir(mode=0o700, exist_ok=True)  # not parents: a removed dir stays removed
        partial = path.with_suffix(".partial")
        import torch  # the workers' alone: the server never imports torch

        torch.save(checkpoint, partial)
        partial.chmod(0o600)  # tenants' models: the operator's alone, as the whole data dir
        os.replace(partial, path)
        return path

    def load_checkpoint(self, run_id: str, name: str) -> dict[str, Any]:
        import torch  # a worker's, or an inference's

        return torch.load(self.checkpoint(run_id, name), weights_only=True)

    def receive_dataset(self, dataset_id: str, stream: BinaryIO, limit: int) -> CsvShape:
        """Store a CSV as the dataset's file and return its shape; nothing is kept if it is bad
        or larger than ``limit`` bytes."""
        path = self.dataset(dataset_id)
        try:
            _copy_limited(stream, path, limit)
            return inspect_csv(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def remove_orphans(self, store: Any) -> None:
        """Files a kill left behind: half-written checkpoints, and dataset files that neither a
        dataset nor a run (which keeps the data it trained on) refers to."""
        for partial in (self.root / "checkpoints").glob("*/*.partial"):
            partial.unlink(missing_ok=True)
        # Result folders of attempts a stop or a kill interrupted: each is redone from its last
        # checkpoint in a folder of its own. Checkpoint folders of runs that are gone go too.
        shutil.rmtree(self.root / "attempts", ignore_errors=True)
        for frozen in self.root.glob(".state-*"):  # a snapshot a kill interrupted
            shutil.rmtree(frozen, ignore_errors=True)
        runs = {r["id"] for r in store.documents("run")}
        for folder in (self.root / "checkpoints").iterdir():
            if folder.is_dir() and folder.name not in runs:
                shutil.rmtree(folder, ignore_errors=True)
        wanted = {d["id"] for d in store.documents("dataset")} | {
            r["dataset_id"] for r in store.documents("run")
        }
        for path in (self.root / "datasets").iterdir():  # <id>.csv and <id>.credentials.json
            if path.is_file() and path.name.split(".")[0] not in wanted:
                path.unlink(missing_ok=True)

    def make_attempt_folder(self, run_id: str, number: int, generation: int) -> Path:
        """A new folder where one try of an attempt's worker writes its results."""
        folder = self.root / "attempts" / run_id / f"{number}.{generation}"
        for level in (folder.parent.parent, folder.parent):
            level.mkdir(mode=0o700, exist_ok=True)
        folder.mkdir(mode=0o700)
        return folder

    def remove_attempt_folder(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the run's folder, once no attempt has one
            folder.parent.rmdir()

    def delete_run(self, run_id: str) -> None:
        shutil.rmtree(self.root / "checkpoints" / run_id, ignore_errors=True)
        shutil.rmtree(self.root / "attempts" / run_id, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root / "attempts", ignore_errors=True)
        for folder in ("datasets", "checkpoints"):
            shutil.rmtree(self.root / folder, ignore_errors=True)
            (self.root / folder).mkdir(mode=0o700, parents=True)


def _copy_limited(stream: BinaryIO, path: Path, limit: int) -> None:
    written = 0
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        while chunk := stream.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise PayloadTooLarge(
                    f"file: larger than the upload limit of {limit} bytes "
                    "(qcog-mock serve --max-upload-mb raises it)."
                )
            out.write(chunk)


class CsvShape(NamedTuple):
    rows: int
    columns: list[str]


def inspect_csv(path: Path) -> CsvShape:
    """Rows and column names; ``Invalid`` naming what is wrong with the file."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise Invalid("file: the CSV is empty; it needs a header row and data rows.")
    blank = [i + 1 for i, column in enumerate(header) if not column.strip()]
    if blank:
        raise Invalid(
            f"file: column(s) {blank} have no name. Save the CSV with string headers and "
            "without its index (DataFrame.to_csv(index=False))."
        )
    duplicates = sorted(c for c, n in Counter(header).items() if n > 1)
    if duplicates:
        raise Invalid(f"file: duplicate column names {duplicates}.")
    import pandas as pd  # at the first upload: a server starts without it

    try:
        rows = len(pd.read_csv(path, usecols=[0]))
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise Invalid(f"file: not a readable CSV file: {error}") from None
    return CsvShape(rows, header)
