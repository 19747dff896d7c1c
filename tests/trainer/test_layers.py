from __future__ import annotations

import math

import pytest
import torch

from qcog_mock.trainer.eigh import eigh, ground_state
from qcog_mock.trainer.layers import (
    GeneralHSM,
    GeneralHSMFullEnergy,
    PauliHSM,
    WeightedLayer,
    error_hamiltonian,
    expectation,
    hermitian,
)
from qcog_mock.trainer.pauli import pauli_basis, pauli_strings

F64 = torch.float64


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def naive_hamiltonian(x: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """½ Σ_k (A_k − x_k I)², row by row: the definition the expanded form must reproduce."""
    dim = operators.shape[-1]
    eye = torch.eye(dim, dtype=operators.dtype)
    rows = []
    for row in x:
        terms = [(a - xk * eye) @ (a - xk * eye) for a, xk in zip(operators, row, strict=True)]
        rows.append(0.5 * torch.stack(terms).sum(0))
    return torch.stack(rows)


@pytest.mark.parametrize("complex_", [True, False])
def test_assembled_operators_are_hermitian_and_round_trip(complex_: bool) -> None:
    model = GeneralHSM(5, 2, 4, complex=complex_, dtype=F64, generator=generator())
    for operators, diags, trius in (
        (model.input_operators(), model.input_diags, model.input_trius),
        (model.output_operators(), model.output_diags, model.output_trius),
    ):
        assert torch.equal(operators, operators.mH)
        assert torch.equal(operators.diagonal(dim1=-2, dim2=-1).real, diags)
        rows, cols = torch.triu_indices(4, 4, offset=1)
        assert torch.equal(operators[:, rows, cols], trius.to(operators.dtype))
    assert model.input_trius.is_complex() == complex_


def test_parameter_names_and_shapes() -> None:
    model = GeneralHSM(77, 1, 4)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {
        "input_diags": (77, 4),
        "input_trius": (77, 6),
        "output_diags": (1, 4),
        "output_trius": (1, 6),
    }
    assert model.input_trius.dtype == torch.complex64
    assert model.input_diags.dtype == torch.float32


def test_expanded_hamiltonian_equals_the_naive_form_up_to_the_constant_shift() -> None:
    model = GeneralHSM(6, 1, 4, dtype=F64, generator=generator(1))
    x = torch.randn(9, 6, dtype=F64, generator=generator(2))
    operators = model.input_operators()
    shift = 0.5 * (x**2).sum(1)[:, None, None] * torch.eye(4, dtype=operators.dtype)
    expanded = error_hamiltonian(x, operators)
    assert torch.allclose(expanded + shift, naive_hamiltonian(x, operators), atol=1e-12)


def test_nan_inputs_drop_out_of_their_rows_hamiltonian() -> None:
    model = GeneralHSM(4, 1, 3, dtype=F64, generator=generator(3))
    x = torch.randn(5, 4, dtype=F64, generator=generator(4))
    x[1, 2] = float("nan")
    x[3, 0] = float("nan")
    masked = error_hamiltonian(x, model.input_operators())
    for row in range(5):
        keep = ~torch.isnan(x[row])
        expected = error_hamiltonian(x[row, keep][None], model.input_operators()[keep])
        assert torch.allclose(masked[row], expected[0], atol=1e-12)
    assert torch.isfinite(model(x)).all()


def test_readout_is_invariant_to_eigenvector_phase() -> None:
    model = GeneralHSM(3, 2, 4, dtype=F64, generator=generator(5))
    x = torch.randn(8, 3, dtype=F64, generator=generator(6))
    _, states = torch.linalg.eigh(error_hamiltonian(x, model.input_operators()))
    ground = states[..., 0]
    phases = torch.exp(1j * torch.rand(8, 1, dtype=F64, generator=generator(7)) * 2 * math.pi)
    before = expectation(ground, model.output_operators())
    after = expectation(ground * phases, model.output_operators())
    assert torch.allclose(before, after, atol=1e-12)


def test_forward_is_the_ground_state_expectation() -> None:
    model = GeneralHSM(3, 2, 4, dtype=F64, generator=generator(8))
    x = torch.randn(6, 3, dtype=F64, generator=generator(9))
    output = model(x)
    for t in range(6):
        hamiltonian = naive_hamiltonian(x[t : t + 1], model.input_operators())[0]
        _, vectors = torch.linalg.eigh(hamiltonian)
        psi = vectors[:, 0]
        for j, operator in enumerate(model.output_operators()):
            assert output[t, j].item() == pytest.approx((psi.conj() @ operator @ psi).real.item())


def test_large_beta_recovers_the_ground_state_and_zero_beta_the_uniform_mixture() -> None:
    x = torch.randn(7, 3, dtype=F64, generator=generator(10))
    pure = GeneralHSM(3, 1, 4, beta=None, dtype=F64, generator=generator(11))
    cold = GeneralHSM(3, 1, 4, beta=1e4, dtype=F64, generator=generator(11))
    hot = GeneralHSM(3, 1, 4, beta=0.0, dtype=F64, generator=generator(11))
    mixed = GeneralHSM(3, 1, 4, beta=0.3, dtype=F64, generator=generator(11))
    assert torch.allclose(cold(x), pure(x), atol=1e-9)
    trace = pure.output_operators()[0].diagonal().real.sum() / 4
    assert torch.allclose(hot(x), trace.expand(7, 1), atol=1e-12)
    assert not torch.allclose(mixed(x), pure(x), atol=1e-3)


def test_broadened_eigh_gradient_equals_torch_on_well_separated_spectra() -> None:
    model = GeneralHSM(4, 1, 4, dtype=F64, generator=generator(12))
    x = torch.randn(5, 4, dtype=F64, generator=generator(13))
    base = error_hamiltonian(x, model.input_operators()).detach()
    readout = model.output_operators().detach()

    def loss(solver, hamiltonian: torch.Tensor) -> torch.Tensor:
        values, vectors = solver(hamiltonian)
        return (expectation(vectors[..., 0], readout) ** 2).sum() + values[..., 0].sum()

    exact_h = base.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(loss(torch.linalg.eigh, exact_h), exact_h)
    broad_h = base.clone().requires_grad_(True)
    (broad,) = torch.autograd.grad(loss(lambda h: eigh(h, 1e-20), broad_h), broad_h)
    assert torch.allclose(broad, exact, atol=1e-10)


def test_ground_state_backward_equals_torch_on_well_separated_spectra() -> None:
    model = GeneralHSM(4, 2, 5, dtype=F64, generator=generator(30))
    x = torch.randn(6, 4, dtype=F64, generator=generator(31))
    base = error_hamiltonian(x, model.input_operators()).detach()
    readout = model.output_operators().detach()

    def gradient(solver) -> torch.Tensor:
        hamiltonian = base.clone().requires_grad_(True)
        loss = (expectation(solver(hamiltonian), readout) ** 2).sum()
        (grad,) = torch.autograd.grad(loss, hamiltonian)
        return grad

    exact = gradient(lambda h: torch.linalg.eigh(h)[1][..., 0])
    assert torch.allclose(gradient(lambda h: ground_state(h, 1e-20)), exact, atol=1e-12)
    assert torch.allclose(gradient(lambda h: ground_state(h, None)), exact, atol=1e-12)


def test_broadened_eigh_passes_gradcheck_as_a_function_of_the_operators() -> None:
    model = GeneralHSM(3, 1, 3, eigh_eps=1e-20, dtype=F64, generator=generator(14))
    x = torch.randn(4, 3, dtype=F64, generator=generator(15))
    params = [model.input_diags, model.input_trius]

    def function(diags: torch.Tensor, trius: torch.Tensor) -> torch.Tensor:
        hamiltonian = error_hamiltonian(x, hermitian(diags, trius, 3))
        _, vectors = eigh(hamiltonian, 1e-20)
        return expectation(vectors[..., 0], model.output_operators().detach())

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(function, inputs)


def test_broadened_gradient_stays_finite_at_a_near_degeneracy_where_torch_explodes() -> None:
    # Two nearly degenerate ground levels (gap 1e-7) mixed by a perturbation.
    gap = 1e-7
    values = torch.tensor([0.0, gap, 1.0, 2.0], dtype=F64)
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, dtype=F64, generator=generator(16)))
    base = rotation @ torch.diag(values) @ rotation.T
    readout = torch.randn(4, 4, dtype=F64, generator=generator(17))
    readout = readout + readout.T

    def gradient(solver) -> torch.Tensor:
        hamiltonian = base.clone().requires_grad_(True)
        _, vectors = solver(hamiltonian)
        psi = vectors[..., 0]
        (grad,) = torch.autograd.grad(psi @ readout @ psi, hamiltonian)
        return grad

    exact = gradient(torch.linalg.eigh).norm().item()
    assert exact > 1e5  # ∝ 1/gap
    for broad in (
        gradient(lambda h: eigh(h, 1e-8)).norm().item(),
        gradient(lambda h: (None, ground_state(h, 1e-8).unsqueeze(-1))).norm().item(),
    ):
        assert math.isfinite(broad) and broad < 1e3
        assert broad < exact / 1000


@pytest.mark.parametrize(
    ("qubits", "weight"), [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), (4, 2), (4, 4)]
)
def test_pauli_basis_size_matches_the_count_formula(qubits: int, weight: int) -> None:
    expected = sum(math.comb(qubits, i) * 3**i for i in range(weight + 1))
    assert len(pauli_strings(qubits, weight)) == expected
    assert pauli_basis(qubits, weight).shape == (expected, 2**qubits, 2**qubits)


def test_pauli_basis_is_orthogonal_hermitian_and_ordered() -> None:
    basis = pauli_basis(3, 3, dtype=torch.complex128)
    dim = 8
    gram = torch.einsum("aij,bji->ab", basis, basis)  # Tr(P_a P_b)
    assert torch.allclose(gram, dim * torch.eye(len(basis), dtype=gram.dtype))
    assert torch.equal(basis, basis.mH)
    strings = pauli_strings(3, 3)
    assert strings[:4] == ("III", "IIX", "IIY", "IIZ")
    weights = [sum(c != "I" for c in s) for s in strings]
    assert weights == sorted(weights)


def test_pauli_operators_are_hermitian_and_the_model_trains_its_coefficients() -> None:
    model = PauliHSM(5, 1, 2, input_operator_pauli_weight=1, dtype=F64, generator=generator(18))
    assert model.input_pauli_coeffs.shape == (5, 7)
    assert model.output_pauli_coeffs.shape == (1, 16)
    operators = model.input_operators()
    assert torch.allclose(operators, operators.mH)
    output = model(torch.randn(3, 5, dtype=F64, generator=generator(19)))
    output.sum().backward()
    assert model.input_pauli_coeffs.grad is not None
    assert "input_basis" not in model.state_dict()


def test_full_energy_adds_half_the_squared_output_operators() -> None:
    model = GeneralHSMFullEnergy(3, 2, 4, dtype=F64, generator=generator(20))
    x = torch.randn(4, 3, dtype=F64, generator=generator(21))
    outputs = model.output_operators()
    extra = 0.5 * (outputs @ outputs).sum(0)
    expected = error_hamiltonian(x, model.input_operators()) + extra
    assert torch.allclose(model.hamiltonian(x, outputs), expected)
    assert model.eigh_eps == 1e-8 and model.beta is None
    assert model.input_trius.is_complex()


def test_weighted_layer_scales_inputs_and_names_wrapped_parameters() -> None:
    inner = GeneralHSM(4, 1, 2, dtype=F64, generator=generator(22))
    wrapped = WeightedLayer(inner)
    names = [name for name, _ in wrapped.named_parameters()]
    assert names[0] == "input_weights"
    assert "hsm_layer.input_diags" in names
    x = torch.randn(3, 4, dtype=F64, generator=generator(23))
    assert torch.equal(wrapped(x), inner(x))
    with torch.no_grad():
        wrapped.input_weights.copy_(torch.tensor([2.0, 1.0, 0.5, 1.0], dtype=F64))
    assert torch.allclose(wrapped(x), inner(x * wrapped.input_weights))
