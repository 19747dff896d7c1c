import pytest

from qcog_mock.mockserver.costmodel import epoch_seconds


def guide(**overrides):
    return {"hsm_model": "general", "hilbert_space_dims": 4, "input_operator_count": 77,
            "split": 0.2, **overrides}  # fmt: skip


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
    pauli = {"hsm_model": "pauli", "qubits_count": 2, "input_operator_count": 77, "split": 0.2}
    assert epoch_seconds(pauli, 10_000, 1) == epoch_seconds(guide(), 10_000, 1)
