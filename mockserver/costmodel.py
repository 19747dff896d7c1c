"""How many simulated seconds an epoch costs: a deterministic formula of the workload.

    per_row  = 22 µs × (N / 4)^1.7 × (0.5 + 0.5 · K / 77) × variant
    epoch    = 0.02 s + per_row × (train_rows + 0.6 · validation_rows) / cpu_count^0.25

N is the Hilbert dimension (2^qubits for Pauli), K the number of input features. ``variant`` is
1.0 for complex General models, 0.67 with ``complex=False``, ×1.4 with ``beta`` (all eigenstates),
×1.05 for ``general_fullenergy``. Validation rows are forward-only (≈ 60 % of a training row).
More cores help little (``cpu_count^0.25``): batched small eigendecompositions do not scale.

The constants reproduce the platform guide's example (≈ 0.54 s per epoch on one core for 20,798
training rows, 77 features, N = 4) and the N-scaling measured for this trainer on a CPU. An
override —
server-wide (``--epoch-seconds``) or per run (``params["emulator"]["epoch_seconds"]``) — replaces
the formula with a constant.
"""

from __future__ import annotations

import math

from qcog_mock.trainer.hyperparameters import (
    PauliHSModelHyperparameters,
    SupportedHyperparameters,
)

REFERENCE_ROW_SECONDS = 22e-6
OVERHEAD_SECONDS = 0.02


def hilbert_dimension(hyperparameters: SupportedHyperparameters) -> int:
    if isinstance(hyperparameters, PauliHSModelHyperparameters):
        return 2**hyperparameters.qubits_count
    return hyperparameters.hilbert_space_dims


def epoch_seconds(hyperparameters: SupportedHyperparameters, rows: int, cpu_count: int) -> float:
    """The formula above for validated hyperparameters and a dataset of ``rows`` rows."""
    hp = hyperparameters
    dim = hilbert_dimension(hp)
    variant = 1.0
    if hp.hsm_model == "general":
        if not hp.complex:
            variant *= 0.67
        if hp.beta is not None:
            variant *= 1.4
    elif hp.hsm_model == "general_fullenergy":
        variant *= 1.05
    features = hp.input_operator_count
    per_row = REFERENCE_ROW_SECONDS * (dim / 4) ** 1.7 * (0.5 + 0.5 * features / 77) * variant
    validation = math.ceil(hp.split * rows)
    training = rows - validation
    return OVERHEAD_SECONDS + per_row * (training + 0.6 * validation) / max(1, cpu_count) ** 0.25
