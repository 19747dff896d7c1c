"""Hilbert Space Model layers: real (T, K) inputs to real (T, J) outputs.

Every variant follows one pipeline (``HilbertSpaceModel.forward``):

1. input operators A_k and output operators B_j, Hermitian N×N;
2. the error Hamiltonian in expanded form, H(x) = ½ Σ_k A_k² − Σ_k x_k A_k (the ½‖x‖² I shift is
   dropped: it moves no eigenvector). A NaN feature drops out of its row's sum (masked Hamiltonian);
3. the ground state ψ of H(x) (``beta=None``), or the thermal mixture ρ = Σ_n p_n |ψ_n⟩⟨ψ_n| with
   p_n ∝ exp(−β λ_n);
4. the readout ŷ_j = ⟨ψ|B_j|ψ⟩ (resp. Tr ρ B_j).

Variants differ in how they parameterise the operators (``General``: real diagonal + upper triangle;
``Pauli``: real coefficients over a Pauli-string basis) and, for ``GeneralFullEnergy``, in a static
term added to H.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from qcog_mock.trainer.eigh import eigh, ground_state
from qcog_mock.trainer.hyperparameters import (
    GeneralHSModelHyperparameters,
    PauliHSModelHyperparameters,
    SupportedHyperparameters,
)
from qcog_mock.trainer.pauli import pauli_basis

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def hermitian(diags: torch.Tensor, trius: torch.Tensor, dim: int) -> torch.Tensor:
    """Assemble (n, dim, dim) Hermitian matrices from real diagonals and strict upper triangles.

    ``trius`` holds the entries above the diagonal in ``torch.triu_indices(dim, dim, 1)`` order.
    """
    rows, cols = torch.triu_indices(dim, dim, offset=1)
    upper = trius.new_zeros(diags.shape[0], dim, dim)
    upper[:, rows, cols] = trius
    return upper + upper.mH + torch.diag_embed(diags.to(trius.dtype))


def error_hamiltonian(x: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """H(x) = ½ Σ_k m_k A_k² − Σ_k m_k x_k A_k, with m_k = 0 where x_k is NaN, else 1."""
    # A NaN anywhere makes the sum NaN: one cheap reduction instead of a mask on every batch.
    if torch.isnan(x.sum()):
        missing = torch.isnan(x)
        present = (~missing).to(x.dtype)
        x = x.masked_fill(missing, 0.0)
        quadratic = _real_matmul(present, operators @ operators)
    else:
        quadratic = (operators @ operators).sum(0)
    return 0.5 * quadratic - _real_matmul(x, operators)


def _real_matmul(weights: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """Σ_k w_tk A_k for real (T, K) weights: one real GEMM, complex operators seen as real pairs."""
    count, dim = operators.shape[0], operators.shape[-1]
    if not operators.is_complex():
        return (weights @ operators.reshape(count, dim * dim)).reshape(-1, dim, dim)
    pairs = torch.view_as_real(operators).reshape(count, dim * dim * 2)
    return torch.view_as_complex((weights @ pairs).reshape(-1, dim, dim, 2))


def expectation(states: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """⟨ψ_t|B_j|ψ_t⟩ for states (T, N) and operators (J, N, N) → (T, J), real."""
    applied = torch.einsum("jab,tb->tja", operators, states)
    return (states.conj().unsqueeze(1) * applied).sum(-1).real


class HilbertSpaceModel(nn.Module):
    """The shared pipeline; subclasses provide the operators."""

    def __init__(
        self,
        input_operator_count: int,
        output_operator_count: int,
        dim: int,
        beta: float | None,
        eigh_eps: float | None,
        dtype: torch.dtype,
    ) -> None:
        super().__init__()
        self.real_dtype = dtype
        self.input_operator_count = input_operator_count
        self.output_operator_count = output_operator_count
        self.dim = dim
        self.beta = beta
        self.eigh_eps = eigh_eps

    def input_operators(self) -> torch.Tensor:
        raise NotImplementedError

    def output_operators(self) -> torch.Tensor:
        raise NotImplementedError

    def static_hamiltonian(self, outputs: torch.Tensor) -> torch.Tensor | None:
        """A data-independent term added to H(x); none by default."""
        return None

    def hamiltonian(self, x: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        hamiltonian = error_hamiltonian(x, self.input_operators())
        static = self.static_hamiltonian(outputs)
        return hamiltonian if static is None else hamiltonian + static

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = self.output_operators()
        hamiltonian = self.hamiltonian(x, outputs)
        if self.beta is None:
            return expectation(ground_state(hamiltonian, self.eigh_eps), outputs)
        energies, states = eigh(hamiltonian, self.eigh_eps)
        # Thermal mixture: every eigenstate's readout, weighted by its Boltzmann factor.
        weights = torch.softmax(-self.beta * energies, dim=-1)  # (T, N)
        applied = torch.einsum("jab,tbn->tjan", outputs, states)
        readouts = (states.conj().unsqueeze(1) * applied).sum(-2).real  # (T, J, N)
        return (readouts * weights.unsqueeze(1)).sum(-1)


class GeneralHSM(HilbertSpaceModel):
    """Operators stored as real diagonals plus (complex or real) strict upper triangles."""

    def __init__(
        self,
        input_operator_count: int,
        output_operator_count: int,
        hilbert_space_dims: int,
        beta: float | None = None,
        complex: bool = True,
        eigh_eps: float | None = 1e-8,
        *,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            input_operator_count, output_operator_count, hilbert_space_dims, beta, eigh_eps, dtype
        )
        dim = hilbert_space_dims
        triangle = dim * (dim - 1) // 2
        off_dtype = _COMPLEX[dtype] if complex else dtype
        # Diagonals ~ N(0, 1) so each spectrum spans standardised data; off-diagonal entries with
        # E|u|² = 1/N, so Tr(A²)/N ≈ 2 whatever N.
        scale = 1.0 / math.sqrt(dim)

        def diag(count: int) -> nn.Parameter:
            return nn.Parameter(torch.randn(count, dim, dtype=dtype, generator=generator))

        def triu(count: int) -> nn.Parameter:
            values = torch.randn(count, triangle, dtype=off_dtype, generator=generator)
            return nn.Parameter(values * scale)

        self.input_diags = diag(input_operator_count)
        self.input_trius = triu(input_operator_count)
        self.output_diags = diag(output_operator_count)
        self.output_trius = triu(output_operator_count)

    def input_operators(self) -> torch.Tensor:
        return hermitian(self.input_diags, self.input_trius, self.dim)

    def output_operators(self) -> torch.Tensor:
        return hermitian(self.output_diags, self.output_trius, self.dim)


class GeneralHSMFullEnergy(GeneralHSM):
    """``general_fullenergy``, the loop-compatible reading of the energy objective.

    The full energy ½ Σ_k (A_k − x_k)² + ½ Σ_j (B_j − y_j)² expands, in its y-independent part, to
    H(x) + ½ Σ_j B_j²: the output operators shape the state as well as read it out. The state is the
    ground state of that Hamiltonian, the output is ⟨B_j⟩, and the configured loss trains it, so
    predictions need only x. As the public experiment passes no ``beta``, ``complex`` or
    ``eigh_eps`` to this layer, it is complex, unmixed, with the broadened backward at ε = 1e-8.
    """

    def __init__(
        self,
        input_operator_count: int,
        output_operator_count: int,
        hilbert_space_dims: int,
        *,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            input_operator_count,
            output_operator_count,
            hilbert_space_dims,
            beta=None,
            complex=True,
            eigh_eps=1e-8,
            dtype=dtype,
            generator=generator,
        )

    def static_hamiltonian(self, outputs: torch.Tensor) -> torch.Tensor:
        return 0.5 * (outputs @ outputs).sum(0)


class PauliHSM(HilbertSpaceModel):
    """Operators as real combinations of Pauli strings on ``qubits_count`` qubits."""

    input_basis: torch.Tensor  # buffers, registered in __init__
    output_basis: torch.Tensor

    def __init__(
        self,
        input_operator_count: int,
        output_operator_count: int,
        qubits_count: int,
        input_operator_pauli_weight: int | None = None,
        output_operator_pauli_weight: int | None = None,
        eigh_eps: float | None = 1e-8,
        *,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            input_operator_count, output_operator_count, 2**qubits_count, None, eigh_eps, dtype
        )
        complex_dtype = _COMPLEX[dtype]
        input_basis = pauli_basis(qubits_count, input_operator_pauli_weight or qubits_count)
        output_basis = pauli_basis(qubits_count, output_operator_pauli_weight or qubits_count)
        # Rebuilt from the hyperparameters, so kept out of the state dict.
        self.register_buffer("input_basis", input_basis.to(complex_dtype), persistent=False)
        self.register_buffer("output_basis", output_basis.to(complex_dtype), persistent=False)

        def coeffs(count: int, strings: int) -> nn.Parameter:
            # c ~ N(0, 2/S) gives Tr(A²)/N ≈ 2, the scale of the general initialisation.
            values = torch.randn(count, strings, dtype=dtype, generator=generator)
            return nn.Parameter(values * math.sqrt(2.0 / strings))

        self.input_pauli_coeffs = coeffs(input_operator_count, input_basis.shape[0])
        self.output_pauli_coeffs = coeffs(output_operator_count, output_basis.shape[0])

    def input_operators(self) -> torch.Tensor:
        flat = self.input_basis.flatten(1)
        return (self.input_pauli_coeffs.to(flat.dtype) @ flat).reshape(-1, self.dim, self.dim)

    def output_operators(self) -> torch.Tensor:
        flat = self.output_basis.flatten(1)
        return (self.output_pauli_coeffs.to(flat.dtype) @ flat).reshape(-1, self.dim, self.dim)


class WeightedLayer(nn.Module):
    """Learnable per-feature weights applied to the inputs before the wrapped layer."""

    def __init__(self, hsm_layer: HilbertSpaceModel) -> None:
        super().__init__()
        self.hsm_layer = hsm_layer
        self.input_weights = nn.Parameter(
            torch.ones(hsm_layer.input_operator_count, dtype=hsm_layer.real_dtype)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hsm_layer(x * self.input_weights)


def build_model(
    hyperparameters: SupportedHyperparameters, generator: torch.Generator | None = None
) -> nn.Module:
    """The layer ``hsm_model`` names, wrapped in a ``WeightedLayer`` when ``weighted_layer``."""
    hp = hyperparameters
    layer: HilbertSpaceModel
    if isinstance(hp, PauliHSModelHyperparameters):
        layer = PauliHSM(
            hp.input_operator_count,
            hp.output_operator_count,
            hp.qubits_count,
            hp.input_operator_pauli_weight,
            hp.output_operator_pauli_weight,
            hp.eigh_eps,
            generator=generator,
        )
    elif isinstance(hp, GeneralHSModelHyperparameters) and hp.hsm_model == "general_fullenergy":
        layer = GeneralHSMFullEnergy(
            hp.input_operator_count,
            hp.output_operator_count,
            hp.hilbert_space_dims,
            generator=generator,
        )
    else:
        layer = GeneralHSM(
            hp.input_operator_count,
            hp.output_operator_count,
            hp.hilbert_space_dims,
            hp.beta,
            hp.complex,
            hp.eigh_eps,
            generator=generator,
        )
    return WeightedLayer(layer) if hp.weighted_layer else layer
