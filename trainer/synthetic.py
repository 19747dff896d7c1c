"""A deterministic synthetic panel shaped like the platform guides' example dataset.

77 feature columns (``feature_00`` … ``feature_76``) and the target
``scaled_demedian_forward_return_22d``: dates × assets rows, latent factors seen through noisy
loadings, a target mixing a linear part, an interaction and a regime-dependent sign flip with
heavy-tailed noise, robustly scaled per date. ``signal_share`` is the target's share of explained
variance; at the default 0.35 a Hilbert Space Model visibly beats predicting the mean.
All draws come from one generator seeded by ``seed``, so a given call gives the same bytes anywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TARGET = "scaled_demedian_forward_return_22d"
FACTORS = 6


def feature_names(count: int) -> list[str]:
    return [f"feature_{i:02d}" for i in range(count)]


def synthetic_panel(
    dates: int = 400,
    assets: int = 100,
    features: int = 77,
    signal_share: float = 0.35,
    seed: int = 0,
) -> pd.DataFrame:
    if dates < 1 or assets < 2 or features < 1:
        raise ValueError("synthetic_panel needs dates >= 1, assets >= 2 and features >= 1")
    if not 0.0 <= signal_share <= 1.0:
        raise ValueError("signal_share must be between 0 and 1")
    rng = np.random.default_rng(seed)
    rows = dates * assets
    date = np.repeat(np.arange(dates), assets)

    factors = rng.standard_normal((rows, FACTORS))
    regime = np.sign(rng.standard_normal(dates))[date]
    # About 40 % of the features load on no factor: pure noise the model must learn to ignore.
    loadings = rng.standard_normal((FACTORS, features)) * (rng.random(features) < 0.6)
    raw = factors @ loadings + rng.standard_t(4, size=(rows, features))

    by_date = raw.reshape(dates, assets, features)
    mean = by_date.mean(axis=1, keepdims=True)
    std = by_date.std(axis=1, ddof=1, keepdims=True)
    x = ((by_date - mean) / (std + 1e-8)).reshape(rows, features)

    f = factors
    signal = (
        0.6 * f[:, 0] - 0.4 * f[:, 1] + 0.5 * np.tanh(f[:, 2] * f[:, 3]) + 0.4 * regime * f[:, 4]
    )
    signal /= signal.std()
    noise = rng.standard_t(3, size=rows)
    noise /= noise.std()
    raw_target = np.sqrt(signal_share) * signal + np.sqrt(1.0 - signal_share) * noise

    per_date = raw_target.reshape(dates, assets)
    median = np.median(per_date, axis=1, keepdims=True)
    mad = np.median(np.abs(per_date - median), axis=1, keepdims=True) + 1e-8
    y = np.clip((per_date - median) / (1.4826 * mad), -5.0, 5.0).reshape(rows)

    frame = pd.DataFrame(x.astype(np.float32), columns=feature_names(features))
    frame[TARGET] = y.astype(np.float32)
    return frame


def write_synthetic_csv(path: str | Path, **options: float) -> Path:
    """Write ``synthetic_panel(**options)`` as CSV (header, no index column)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    synthetic_panel(**options).to_csv(path, index=False, float_format="%.7g")  # type: ignore[arg-type]
    return path
