"""Hermitian eigendecomposition with a Lorentzian-broadened backward pass (``eigh_eps``).

The forward pass is ``torch.linalg.eigh``. Its exact backward multiplies the eigenvector
gradient by ``F_ij = 1 / (λ_j − λ_i)``, which explodes where two levels nearly cross. The
broadened backward uses ``F_ij = E_ij / (E_ij² + ε)`` instead: equal to the exact factor for
gaps ``|E| ≫ √ε``, half of it at ``|E| = √ε``, and smoothly zero at an exact degeneracy.

Given ``H = V diag(λ) Vᴴ`` and upstream gradients ``ḡ_λ``, ``Ḡ_V``:
``∂L/∂H = V (skew(Vᴴ Ḡ_V) ∘ F + diag(ḡ_λ)) Vᴴ`` with ``skew(M) = (M − Mᴴ) / 2``.
"""

from __future__ import annotations

from typing import Any

import torch


class _BroadenedEigh(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, hamiltonian: torch.Tensor, eps: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        eigenvalues, eigenvectors = torch.linalg.eigh(hamiltonian)
        ctx.save_for_backward(eigenvalues, eigenvectors)
        ctx.eps = eps
        return eigenvalues, eigenvectors

    @staticmethod
    def backward(
        ctx: Any, grad_values: torch.Tensor | None, grad_vectors: torch.Tensor | None
    ) -> tuple[torch.Tensor, None]:
        eigenvalues, eigenvectors = ctx.saved_tensors
        vh = eigenvectors.mH
        if grad_vectors is not None:
            projected = vh @ grad_vectors
            gaps = eigenvalues.unsqueeze(-2) - eigenvalues.unsqueeze(-1)  # E_ij = λ_j − λ_i
            # skew(M) ∘ F, with the ½ of skew folded into the real factor.
            factor = gaps / (2 * (gaps * gaps + ctx.eps))
            inner = (projected - projected.mH) * factor
        else:
            inner = torch.zeros_like(eigenvectors)
        if grad_values is not None:
            inner.diagonal(dim1=-2, dim2=-1).add_(grad_values)
        return eigenvectors @ inner @ vh, None


class _BroadenedGroundState(torch.autograd.Function):
    """The lowest eigenvector alone, with the broadened backward specialised to it.

    Only ψ₀ = V[:, 0] receives a gradient g, so with c = Vᴴ g the middle matrix has entries in row
    and column 0 only: w_n = c_n F_n0 / 2 (w_0 = 0) and ∂L/∂H = u ψ₀ᴴ + ψ₀ uᴴ with u = V w —
    two matrix-vector products and a rank-2 update instead of three N×N matrix products.
    """

    @staticmethod
    def forward(ctx: Any, hamiltonian: torch.Tensor, eps: float) -> torch.Tensor:
        eigenvalues, eigenvectors = torch.linalg.eigh(hamiltonian)
        ctx.save_for_backward(eigenvalues, eigenvectors)
        ctx.eps = eps
        return eigenvectors[..., 0]

    @staticmethod
    def backward(ctx: Any, grad_state: torch.Tensor) -> tuple[torch.Tensor, None]:
        eigenvalues, eigenvectors = ctx.saved_tensors
        ground = eigenvectors[..., 0]
        projected = (eigenvectors.mH @ grad_state.unsqueeze(-1)).squeeze(-1)  # c = Vᴴ g
        gaps = eigenvalues[..., :1] - eigenvalues  # E_n0 = λ_0 − λ_n
        weights = projected * (gaps / (2 * (gaps * gaps + ctx.eps)))  # w_0 = 0 since E_00 = 0
        update = (eigenvectors @ weights.unsqueeze(-1)).squeeze(-1)  # u = V w
        outer = update.unsqueeze(-1) * ground.conj().unsqueeze(-2)
        return outer + outer.mH, None


def ground_state(hamiltonian: torch.Tensor, eps: float | None) -> torch.Tensor:
    """The lowest eigenvector of each matrix; ``eps=None`` keeps torch's exact backward."""
    if eps is None:
        return torch.linalg.eigh(hamiltonian)[1][..., 0]
    return _BroadenedGroundState.apply(hamiltonian, eps)


def eigh(hamiltonian: torch.Tensor, eps: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors; ``eps=None`` keeps torch's exact backward."""
    if eps is None:
        return torch.linalg.eigh(hamiltonian)
    return _BroadenedEigh.apply(hamiltonian, eps)
