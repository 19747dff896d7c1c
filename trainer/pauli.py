"""The Pauli-string basis of the Pauli Hilbert Space Model.

A string ``s = s₁…s_q`` over ``I, X, Y, Z`` is the Kronecker product
``σ_{s₁} ⊗ … ⊗ σ_{s_q}`` (leftmost letter = leftmost factor). Its weight is the number of
non-identity letters. An operator of maximum weight ``w`` spans every string of weight 0…w,
identity included: ``S(q, w) = Σ_{i≤w} C(q, i)·3^i`` strings. The order — by weight, then
lexicographic with I < X < Y < Z — is part of the checkpoint format: coefficient ``c[k, p]``
multiplies string ``p`` of this order.
"""

from __future__ import annotations

import functools
import itertools

import torch

_LETTERS = "IXYZ"
_SINGLE = {
    "I": [[1, 0], [0, 1]],
    "X": [[0, 1], [1, 0]],
    "Y": [[0, -1j], [1j, 0]],
    "Z": [[1, 0], [0, -1]],
}


@functools.cache
def pauli_strings(qubits: int, max_weight: int) -> tuple[str, ...]:
    """Every string on ``qubits`` qubits of weight ≤ ``max_weight``, in the basis order."""
    strings = ("".join(letters) for letters in itertools.product(_LETTERS, repeat=qubits))
    kept = [s for s in strings if sum(c != "I" for c in s) <= max_weight]
    # product() already yields lexicographic I < X < Y < Z; a stable sort groups by weight.
    return tuple(sorted(kept, key=lambda s: sum(c != "I" for c in s)))


def pauli_matrix(string: str, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    matrix = torch.ones(1, 1, dtype=dtype)
    for letter in string:
        matrix = torch.kron(matrix, torch.tensor(_SINGLE[letter], dtype=dtype))
    return matrix


def pauli_basis(qubits: int, max_weight: int, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """The dense basis tensor, shape (S, 2^q, 2^q)."""
    return torch.stack([pauli_matrix(s, dtype) for s in pauli_strings(qubits, max_weight)])
