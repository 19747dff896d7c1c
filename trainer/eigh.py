"""Hermitian eigendecomposition with a Lorentzian-broadened backward pass (``eigh_eps``).

The forward pass is ``torch.linalg.eigh``. Its exact backward multiplies the eigenvector
gradient by ``F_ij = 1 / (λ_j − λ_i)``, which explodes where two levels nearly cross. The
broadened backward uses ``F_ij = E_ij / (E_ij² + ε)`` instead: equal to the exact factor for
gaps ``|E| ≫ √ε``, half of it at ``|E| = √ε``, and smoothly zero at an exact degeneracy.

Given ``H = V diag(λ) Vᴴ`` and upstream gradients ``ḡ_λ``, ``Ḡ_V``:
``∂L/∂H = V (skew(Vᴴ Ḡ_V) ∘ F + diag(ḡ_λ)) Vᴴ`` with ``skew(M) = (M − Mᴴ) / 2``.
"""

from __future__ import annotations

import torch


class _BroadenedEigh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hamiltonian: torch.Tensor, eps: float):  # type: ignore[override]
        eigenvalues, eigenvectors = torch.linalg.eigh(hamiltonian)
        ctx.save_for_backward(eigenvalues, eigenvectors)
        ctx.eps = eps
        return eigenvalues, eigenvectors

    @staticmethod
    def backward(ctx, grad_values, grad_vectors):  # type: ignore[override]
        eigenvalues, eigenvectors = ctx.saved_tensors
        vh = eigenvectors.mH
        inner = torch.zeros_like(eigenvectors)
        if grad_vectors is not None:
            projected = vh @ grad_vectors
            skew = 0.5 * (projected - projected.mH)
            gaps = eigenvalues.unsqueeze(-2) - eigenvalues.unsqueeze(-1)  # E_ij = λ_j − λ_i
            factor = gaps / (gaps * gaps + ctx.eps)
            inner = inner + skew * factor.to(skew.dtype)
        if grad_values is not None:
            inner = inner + torch.diag_embed(grad_values.to(inner.dtype))
        return eigenvectors @ inner @ vh, None


def eigh(hamiltonian: torch.Tensor, eps: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (ascending) and eigenvectors; ``eps=None`` keeps torch's exact backward."""
    if eps is None:
        return torch.linalg.eigh(hamiltonian)
    return _BroadenedEigh.apply(hamiltonian, eps)
