"""Every bad-data error comes before the first epoch, names what is wrong, and is final."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from qcog_mock.trainer import DatasetError, train
from qcog_mock.trainer.data import batches, read_csv, split, to_table
from qcog_mock.trainer.synthetic import TARGET, feature_names, synthetic_panel, write_synthetic_csv
from tests.trainer.helpers import Recorder, hyperparameters


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def frame_csv(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    return path


def small_frame(rows: int = 20) -> pd.DataFrame:
    return synthetic_panel(dates=1, assets=rows, features=8, seed=1)


def train_error(path: Path | str, **overrides: Any) -> str:
    recorder = Recorder()
    with pytest.raises(DatasetError) as caught:
        train(recorder, str(path), params={"hyperparameters": hyperparameters(**overrides)})
    assert recorder.started == []  # failed before any epoch
    assert caught.value.retryable is False
    return str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    assert "Dataset file not found" in train_error(tmp_path / "nope.csv")


def test_empty_file(tmp_path: Path) -> None:
    assert "is empty" in train_error(write(tmp_path, ""))


def test_header_without_rows(tmp_path: Path) -> None:
    header = ",".join([*feature_names(8), TARGET])
    assert "has a header but no data rows" in train_error(write(tmp_path, header + "\n"))


def test_missing_target_column_is_named(tmp_path: Path) -> None:
    path = frame_csv(tmp_path, small_frame().drop(columns=[TARGET]))
    message = train_error(path)
    assert f"Target column(s) ['{TARGET}'] not found" in message
    assert "feature_00" in message


def test_missing_input_feature_is_named(tmp_path: Path) -> None:
    path = frame_csv(tmp_path, small_frame())
    message = train_error(path, input_features=["feature_00", "price"], input_operator_count=2)
    assert "Input feature column(s) ['price'] not found" in message


def test_non_numeric_column_is_named_with_the_row(tmp_path: Path) -> None:
    frame = small_frame()
    frame["feature_03"] = frame["feature_03"].astype(object)
    frame.loc[4, "feature_03"] = "n/a-text"
    message = train_error(frame_csv(tmp_path, frame))
    assert "Column 'feature_03' is not numeric" in message
    assert "data row 5" in message and "n/a-text" in message


def test_operator_count_mismatch_uses_the_public_message(tmp_path: Path) -> None:
    path = frame_csv(tmp_path, small_frame())
    assert (
        "Input operator count (feature dimension) mismatch: Hyperparameters: 7 != Data: 8"
        in train_error(path, input_operator_count=7)
    )
    frame = small_frame()
    frame["second_target"] = 0.0
    path = frame_csv(tmp_path, frame)
    message = train_error(
        path, targets=[TARGET, "second_target"], output_operator_count=2, input_operator_count=9
    )
    assert "Input operator count (feature dimension) mismatch: Hyperparameters: 9 != Data: 8" in (
        message
    )


def test_output_count_mismatch_uses_the_public_message() -> None:
    table = to_table(small_frame(), feature_names(8), [TARGET])
    from qcog_mock.trainer.data import check_operator_counts

    with pytest.raises(DatasetError, match=r"Output operator count \(target dimension\) mismatch"):
        check_operator_counts(table, 8, 2)


def test_too_few_rows_for_the_split(tmp_path: Path) -> None:
    path = frame_csv(tmp_path, small_frame(rows=2).head(1))
    message = train_error(path, split=0.2)
    assert "1 row(s), too few for split=0.2" in message


def test_infinite_values_are_named(tmp_path: Path) -> None:
    frame = small_frame()
    frame.loc[2, "feature_01"] = float("inf")
    message = train_error(frame_csv(tmp_path, frame))
    assert "Input column 'feature_01' holds infinite values in rows [3]" in message


def test_missing_targets_are_named_by_row(tmp_path: Path) -> None:
    frame = small_frame()
    frame.loc[[0, 6], TARGET] = None
    assert "Target values are missing in rows [1, 7]" in train_error(frame_csv(tmp_path, frame))


def test_rows_with_every_input_missing_are_named(tmp_path: Path) -> None:
    frame = small_frame()
    frame.loc[9, feature_names(8)] = None
    assert "Every input is missing in rows [10]" in train_error(frame_csv(tmp_path, frame))


def test_nan_inputs_are_masked_and_training_proceeds(tmp_path: Path, small_csv: Path) -> None:
    frame = pd.read_csv(small_csv)
    frame.loc[::7, "feature_02"] = None
    frame.loc[::11, "feature_05"] = None
    path = frame_csv(tmp_path, frame)
    metrics = train({}, str(path), params={"hyperparameters": hyperparameters(epochs=2)})["metrics"]
    assert all(torch.isfinite(torch.tensor(metrics["val_loss_history"])))


def test_s3_locations_are_refused_offline() -> None:
    message = train_error("s3://bucket/data.csv")
    assert "not available offline" in message and "upload" in message


def test_read_csv_accepts_bytes_and_reports_garbage() -> None:
    assert list(read_csv(b"a,b\n1,2\n").columns) == ["a", "b"]
    with pytest.raises(DatasetError, match="not a readable CSV"):
        read_csv(b'a,b\n"1,2\n3,4,5,6\n')


def test_split_is_seeded_and_holds_out_the_ceiling_fraction() -> None:
    table = to_table(small_frame(rows=21), feature_names(8), [TARGET])
    train_a, val_a = split(table, 0.2, torch.Generator().manual_seed(1))
    train_b, val_b = split(table, 0.2, torch.Generator().manual_seed(1))
    assert (len(train_a), len(val_a)) == (16, 5)
    assert torch.equal(val_a.inputs, val_b.inputs) and torch.equal(train_a.inputs, train_b.inputs)
    rows = {tuple(r.tolist()) for r in torch.cat([train_a.inputs, val_a.inputs])}
    assert len(rows) == 21  # a partition of the rows


def test_batches_cover_every_row_once_and_keep_the_last_partial_batch() -> None:
    table = to_table(small_frame(rows=10), feature_names(8), [TARGET])
    sizes, seen = [], []
    for inputs, _ in batches(table, 4, torch.Generator().manual_seed(0)):
        sizes.append(len(inputs))
        seen.extend(tuple(r.tolist()) for r in inputs)
    assert sizes == [4, 4, 2]
    assert sorted(seen) == sorted(tuple(r.tolist()) for r in table.inputs)


def test_synthetic_panel_is_deterministic_and_guide_shaped(tmp_path: Path) -> None:
    first = write_synthetic_csv(tmp_path / "a.csv", dates=5, assets=10, seed=3)
    second = write_synthetic_csv(tmp_path / "b.csv", dates=5, assets=10, seed=3)
    other = write_synthetic_csv(tmp_path / "c.csv", dates=5, assets=10, seed=4)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    frame = pd.read_csv(first)
    assert list(frame.columns) == [*feature_names(77), TARGET]
    assert frame.shape == (50, 78)
    assert frame[TARGET].abs().max() <= 5.0
