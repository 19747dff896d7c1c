"""Training throughput of the trainer's data path, beside a naive reference and the eigh floor.

General HSM, 77 inputs, 1 output, batch 2000, complex64, N ∈ {4, 8, 16}, measured in one run:

- trainer: one epoch of the trainer's own step (pre-loaded tensors sliced by a seeded permutation,
  expanded Hamiltonian, forward + backward + Adam step, gradient clipping);
- naive: the same epoch as the public experiment feeds it (a per-row ``Dataset`` through a
  ``DataLoader``) with a Hamiltonian built per sample as ½ Σ_k (A_k − x_k I)²;
- floor: batched ``torch.linalg.eigh`` alone on the same (batch, N, N) matrices, forward only.

Timings are the fastest of interleaved rounds (see ``fastest``). Prints samples/s and the
ratios the targets are stated in: ≥ 200,000 samples/s at N=4, an epoch
≥ 5× faster than naive, and ≤ 2.5× the eigh-only floor at N=8.

    .venv/bin/python bench/bench_trainer.py [--rows 20000] [--threads 1] [--repeats 9]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from qcog_mock.trainer import data
from qcog_mock.trainer.components import build_loss, build_optimizer
from qcog_mock.trainer.experiment import _Loop
from qcog_mock.trainer.hyperparameters import parse_hyperparameters
from qcog_mock.trainer.layers import build_model, hermitian

FEATURES, BATCH = 77, 2000


def hyperparameters(dim: int) -> dict:
    return {
        "hsm_model": "general",
        "epochs": 1,
        "batch_size": BATCH,
        "targets": "y",
        "input_operator_count": FEATURES,
        "output_operator_count": 1,
        "hilbert_space_dims": dim,
        "optimizer_config": {
            "type": "Adam",
            "default_params": {"lr": 1e-3},
            "group_params": [
                {"param_name_contains": ["input_diag"], "params": {"lr": 1e-4, "weight_decay": 0}}
            ],
        },
        "loss_fn_config": {"type": "MSELoss"},
        "gradient_clipping_config": {"max_norm": 1.0},
    }


def fastest(repeats: int, *epochs: Callable[[], None]) -> list[float]:
    """The fastest of ``repeats`` timings of each epoch, measured in interleaved rounds.

    Round-robin order gives every variant the same share of whatever else the host is doing, and
    the minimum is the estimate least disturbed by it.
    """
    for epoch in epochs:
        epoch()  # warm-up
    best = [math.inf] * len(epochs)
    for _ in range(repeats):
        for i, epoch in enumerate(epochs):
            start = time.perf_counter()
            epoch()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def trainer_epoch(dim: int, table: data.Table) -> Callable[[], None]:
    hp = parse_hyperparameters(hyperparameters(dim))
    generator = torch.Generator().manual_seed(0)
    model = build_model(hp, generator)
    optimizer = build_optimizer(model, hp.optimizer_config)
    loop = _Loop(hp, model, build_loss(hp.loss_fn_config), optimizer, None, None, generator, {})

    def epoch() -> None:
        model.train()
        for inputs, outputs in data.batches(table, BATCH, generator):
            loop._step(inputs, outputs)

    return epoch


class RowDataset(Dataset):
    """The public experiment's data path: one row per ``__getitem__``, default collation."""

    def __init__(self, table: data.Table) -> None:
        self.inputs, self.outputs = table.inputs, table.outputs

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.outputs[index]


def naive_epoch(dim: int, table: data.Table) -> Callable[[], None]:
    hp = parse_hyperparameters(hyperparameters(dim))
    model = build_model(hp, torch.Generator().manual_seed(0))
    optimizer = build_optimizer(model, hp.optimizer_config)
    loss_fn = torch.nn.MSELoss()
    loader = DataLoader(
        RowDataset(table),
        batch_size=BATCH,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    eye = torch.eye(dim, dtype=torch.complex64)

    def forward(x: torch.Tensor) -> torch.Tensor:
        a = hermitian(model.input_diags, model.input_trius, dim)
        b = hermitian(model.output_diags, model.output_trius, dim)
        shifted = a.unsqueeze(0) - x.to(a.dtype)[:, :, None, None] * eye  # (T, K, N, N)
        hamiltonian = 0.5 * (shifted @ shifted).sum(1)
        _, states = torch.linalg.eigh(hamiltonian)
        psi = states[..., 0]
        return torch.einsum("ta,jab,tb->tj", psi.conj(), b, psi).real

    def epoch() -> None:
        for inputs, outputs in loader:
            loss = loss_fn(forward(inputs), outputs)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

    return epoch


def eigh_floor(dim: int, table: data.Table) -> Callable[[], None]:
    hp = parse_hyperparameters(hyperparameters(dim))
    model = build_model(hp, torch.Generator().manual_seed(0))
    with torch.no_grad():
        matrices = [
            model.hamiltonian(x, model.output_operators()) for x in table.inputs.split(BATCH)
        ]

    def epoch() -> None:
        for hamiltonian in matrices:
            torch.linalg.eigh(hamiltonian)

    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--naive-repeats", type=int, default=2)
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 8, 16])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(1)
    table = data.Table(
        [f"f{i}" for i in range(FEATURES)],
        ["y"],
        torch.randn(args.rows, FEATURES, generator=generator),
        torch.randn(args.rows, 1, generator=generator),
    )
    print(
        f"General HSM, {FEATURES} inputs, 1 output, batch {BATCH}, complex64, "
        f"{args.rows} rows per epoch, torch {torch.__version__}, {args.threads} thread(s), "
        f"fastest of {args.repeats} interleaved rounds (naive: of {args.naive_repeats})"
    )
    header = (
        f"{'N':>3} {'trainer/s':>11} {'naive/s':>10} {'eigh floor/s':>13} "
        f"{'epoch trainer':>14} {'epoch naive':>12} {'naive÷trainer':>14} {'trainer÷floor':>14}"
    )
    print(header)
    print("-" * len(header))
    for dim in args.dims:
        ours, floor = fastest(args.repeats, trainer_epoch(dim, table), eigh_floor(dim, table))
        (naive,) = fastest(args.naive_repeats, naive_epoch(dim, table))
        rows = args.rows
        print(
            f"{dim:>3} {rows / ours:>11,.0f} {rows / naive:>10,.0f} {rows / floor:>13,.0f} "
            f"{ours:>13.3f}s {naive:>11.3f}s {naive / ours:>13.1f}× {ours / floor:>13.2f}×"
        )


if __name__ == "__main__":
    main()
