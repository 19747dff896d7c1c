import pytest

from qcog_mock.mockserver.costmodel import epoch_seconds
from qcog_mock.trainer.hyperparameters import parse_hyperparameters

BASE = {"input_operator_count": 77, "output_operator_count": 1, "targets": "y", "split": 0.2,
        "epochs": 1, "batch_size": 1,
        "optimizer_config": {"type": "Adam"}, "loss_fn_config": {"type": "MSELoss"}}  # fmt: skip


def guide(**overrides):
    return parse_hyperparameters(
        {**BASE, "hsm_model": "general", "hilbert_space_dims": 4, **overrides}
    )


def test_the_guide_example_costs_about_its_documented_epoch_time() -> None:
    # 20,798 training + 5,200 validation rows, one core: the guide reports ≈ 0.54 s per epoch.
    assert epoch_seconds(guide(), rows=25_998, cpu_count=1) == pytest.approx(0.54, rel=0.05)


def test_cost_grows_with_rows_dimension_and_features_and_falls_with_cores() -> None:
    base = epoch_seconds(guide(), rows=10_000, cpu_count=1)
    assert epoch_seconds(guide(), rows=20_000, cpu_count=1) > base
    assert epoch_seconds(guide(hilbert_space_dims=8), rows=10_000, cpu_count=1) > base
    assert epoch_seconds(guide(input_operator_count=150), rows=10_000, cpu_count=1) > base
    assert epoch_seconds(guide(), rows=10_000, cpu_count=4) < base
    assert epoch_seconds(guide(complex=False), rows=10_000, cpu_count=1) < base
    assert epoch_seconds(guide(beta=1.0), rows=10_000, cpu_count=1) > base


def test_pauli_dimension_is_two_to_the_qubits() -> None:
    pauli = parse_hyperparameters({**BASE, "hsm_model": "pauli", "qubits_count": 2})
    assert epoch_seconds(pauli, 10_000, 1) == epoch_seconds(guide(), 10_000, 1)
