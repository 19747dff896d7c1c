from __future__ import annotations

from pathlib import Path

import pytest

from qcog_mock.trainer.synthetic import write_synthetic_csv


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 rows × 8 features + the target: fast to train, still learnable."""
    path = tmp_path_factory.mktemp("data") / "small.csv"
    return write_synthetic_csv(path, dates=20, assets=30, features=8, seed=3)


@pytest.fixture(scope="session")
def guide_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guides' shape: 77 features + target, 3,000 rows."""
    path = tmp_path_factory.mktemp("data") / "guide.csv"
    return write_synthetic_csv(path, dates=30, assets=100, seed=7)
