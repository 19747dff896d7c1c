"""Datasets: CSV in, checked tensors out, split and batched.

A dataset is a CSV file with a header and no index column. Inputs are ``input_features`` or, when
that is unset, every non-target column in file order. Everything that would make training fail is
reported before the first epoch as a ``DatasetError`` naming the columns or rows at fault. NaN
inputs are allowed (the model masks them out of the Hamiltonian); a row whose inputs are all NaN,
a NaN target or an infinite value is an error.

Batching follows the public experiment's semantics (shuffled batches of ``batch_size``, the last
partial batch kept, the validation set in one batch) on pre-loaded tensors sliced by a seeded
permutation, much faster than its per-row ``Dataset``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from qcog_mock.trainer.errors import DatasetError

DatasetSource = str | Path | bytes | io.IOBase


@dataclass(frozen=True)
class Table:
    """A dataset as float32 tensors, with the column names they came from."""

    features: list[str]
    targets: list[str]
    inputs: torch.Tensor  # (rows, features)
    outputs: torch.Tensor  # (rows, targets)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def rows(self, index: torch.Tensor) -> Table:
        return Table(self.features, self.targets, self.inputs[index], self.outputs[index])


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}, … ({len(names)} in all)]" if len(names) > limit else f"[{shown}]"


def _rows(mask: torch.Tensor, limit: int = 10) -> str:
    """1-based data-row numbers (the header excluded) where ``mask`` is true."""
    found = (torch.nonzero(mask).flatten() + 1).tolist()
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"{found[:limit]}{more}"


def read_csv(source: DatasetSource) -> pd.DataFrame:
    """Read a CSV from a path, bytes or a file object; empty or unreadable files are errors."""
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise DatasetError(f"Dataset file not found: {path}")
        name = str(path)
    else:
        name = "the dataset"
        if isinstance(source, bytes):
            source = io.BytesIO(source)
    try:
        frame = pd.read_csv(source)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{name} is empty: it has no header and no rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DatasetError(f"{name} is not a readable CSV file: {error}") from None
    if frame.empty:
        raise DatasetError(f"{name} has a header but no data rows.")
    return frame


def _numeric(frame: pd.DataFrame, columns: list[str]) -> torch.Tensor:
    for column in columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna() & values.notna()
        row = int(bad.to_numpy().nonzero()[0][0]) if bad.any() else 0
        raise DatasetError(
            f"Column '{column}' is not numeric: data row {row + 1} holds {values.iloc[row]!r}. "
            "Every input and target column must hold numbers; encode or drop that column, or "
            "leave it out of input_features."
        )
    array = frame[columns].to_numpy(dtype="float32", na_value=float("nan"))
    return torch.from_numpy(array.copy())


def select_columns(
    frame: pd.DataFrame, targets: list[str], input_features: list[str] | None
) -> tuple[list[str], list[str]]:
    """The (features, targets) columns, checked to exist."""
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    missing = [t for t in targets if t not in columns]
    if missing:
        raise DatasetError(
            f"Target column(s) {missing} not found in the dataset. "
            f"Its columns are {_preview(columns)}."
        )
    if input_features is None:
        features = [c for c in columns if c not in targets]
    else:
        absent = [f for f in input_features if f not in columns]
        if absent:
            raise DatasetError(
                f"Input feature column(s) {absent} not found in the dataset. "
                f"Its columns are {_preview(columns)}."
            )
        features = list(input_features)
    if not features:
        raise DatasetError("The dataset has no input columns besides the target column(s).")
    return features, targets


def _check_finite(values: torch.Tensor, names: list[str], role: str) -> None:
    infinite = torch.isinf(values)
    if infinite.any():
        column = names[int(torch.nonzero(infinite.any(0))[0])]
        raise DatasetError(
            f"{role} column '{column}' holds infinite values in rows "
            f"{_rows(infinite.any(1))}; replace them with finite numbers or leave them empty."
        )


def input_tensor(frame: pd.DataFrame, features: list[str]) -> torch.Tensor:
    """The checked (rows, features) inputs; NaNs are kept for the model to mask."""
    inputs = _numeric(frame, features)
    _check_finite(inputs, features, "Input")
    all_missing = torch.isnan(inputs).all(1)
    if all_missing.any():
        raise DatasetError(f"Every input is missing in rows {_rows(all_missing)}; drop those rows.")
    return inputs


def to_table(frame: pd.DataFrame, features: list[str], targets: list[str]) -> Table:
    inputs = input_tensor(frame, features)
    outputs = _numeric(frame, targets)
    _check_finite(outputs, targets, "Target")
    missing_targets = torch.isnan(outputs).any(1)
    if missing_targets.any():
        raise DatasetError(
            f"Target values are missing in rows {_rows(missing_targets)}; drop those rows."
        )
    return Table(features, targets, inputs, outputs)


def positional_columns(
    columns: list[str], features: list[str] | None, targets: list[str], inputs: int
) -> list[str]:
    """Check an inference file read by position, as the public ``predict`` reads it: the column
    count must be the model's input count; name differences are notes, not errors."""
    if len(columns) != inputs:
        given = [c for c in columns if c in targets]
        hint = f", without the target column(s) {given}" if given else ""
        raise DatasetError(
            f"The inference data has {len(columns)} columns; the model takes {inputs} inputs, "
            f"read by position. Send exactly the {inputs} feature columns in training "
            f"order{hint}."
        )
    if features is None or columns == features:
        return []
    differ = [
        (i + 1, c, f) for i, (c, f) in enumerate(zip(columns, features, strict=True)) if c != f
    ]
    pairs = ", ".join(f"column {i} '{c}' is read as '{f}'" for i, c, f in differ[:5])
    more = f" (and {len(differ) - 5} more)" if len(differ) > 5 else ""
    return [f"Columns are read by position; their names differ from training: {pairs}{more}."]


def check_operator_counts(table: Table, input_count: int, output_count: int) -> None:
    """The public experiment's count checks, with its messages."""
    if input_count != len(table.features):
        raise DatasetError(
            "Input operator count (feature dimension) mismatch: "
            f"Hyperparameters: {input_count} != Data: {len(table.features)}"
        )
    if output_count != len(table.targets):
        raise DatasetError(
            "Output operator count (target dimension) mismatch: "
            f"Hyperparameters: {output_count} != Data: {len(table.targets)}"
        )


def split(table: Table, fraction: float, generator: torch.Generator) -> tuple[Table, Table]:
    """A seeded shuffled split; ``ceil(fraction · rows)`` rows are held out for validation."""
    rows = len(table)
    held_out = math.ceil(fraction * rows)
    if held_out < 1 or rows - held_out < 1:
        raise DatasetError(
            f"The dataset has {rows} row(s), too few for split={fraction}: it needs at least one "
            f"training row and one validation row (this split holds out {held_out}). "
            "Add rows or change split."
        )
    order = torch.randperm(rows, generator=generator)
    return table.rows(order[held_out:]), table.rows(order[:held_out])


def batches(
    table: Table, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of shuffled batches; the last one may be smaller."""
    order = torch.randperm(len(table), generator=generator)
    for start in range(0, len(table), batch_size):
        index = order[start : start + batch_size]
        yield table.inputs.index_select(0, index), table.outputs.index_select(0, index)
