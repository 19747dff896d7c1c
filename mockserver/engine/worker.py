"""One attempt, trained in a worker process, ahead of the simulated clock.

An epoch's simulated cost is known when it starts, so a worker needs nothing from the clock: it
knows the attempt's start, its deadline, each epoch's cost and the fault plan, and computes every
epoch's simulated end time itself. It writes each result — an injected fault, an epoch (its
checkpoint file first), the attempt's end — as the messages of ``protocol.py``, one numbered file
each in the attempt's folder of the data dir; the engine commits them in order, each at its
simulated time. So the timeline is the one a serial run would have, whatever the number of
workers. A worker stays at most ``protocol.LOOKAHEAD`` results ahead of what the engine committed.

Runs where the executor puts it: a local process (``engine/executors.py``) or a Dask worker that
shares the data dir. It imports no server module but this package's faults and the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.engine.protocol import (
    AttemptEnded,
    EpochDone,
    FaultInjected,
    Results,
    WorkerResult,
)
from qcog_mock.mockserver.faults import Fault, FaultPlan


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


class AttemptTimedOut(Exception):
    pass


class InjectedCrash(RuntimeError):
    pass


class StopRequested(Exception):
    """The engine no longer wants this attempt (deleted, cancelled, shut down)."""


@dataclass(frozen=True)
class Resume:
    """Where an attempt resumes: the last checkpoint's file, which the worker reads (the server
    never loads a model), and the loss histories the store keeps up to its epoch."""

    checkpoint: str
    train_loss_history: list[float]
    val_loss_history: list[float]


@dataclass
class AttemptJob:
    """Everything a worker needs: plain values, so that it pickles to any executor."""

    run_id: str
    number: int
    folder: str  # this attempt's results: <data dir>/attempts/<run id>/<number>
    data_root: str
    dataset_path: str
    params: dict[str, Any]  # the experiment's params, hyperparameters validated
    epoch_start: float
    deadline: float
    epoch_cost: float
    faults: tuple[Fault, ...] = ()  # the run's and the server's, in force for this attempt
    resume: Resume | None = None
    torch_threads: int = 1
    gpu_instance: bool = False  # the platform would give it a GPU; it trains on the CPU here


class _Context:
    """The trainer's hooks, charging each epoch its simulated cost without any clock."""

    def __init__(self, job: AttemptJob, results: Results) -> None:
        from qcog_mock.mockserver.files import Files

        self.job = job
        self.results = results
        self.files = Files(Path(job.data_root), create=False)
        self.faults = FaultPlan(job.faults)
        self.epoch_start = job.epoch_start
        self.epoch_end = job.epoch_start
        self.reached_epoch = 0
        self._written = 0
        self._pending: dict[str, Any] | None = None

    def emit(self, result: WorkerResult) -> None:
        self._written += 1
        self.results.write(self._written, result)

    def load_last_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint as the trainer wrote it, its loss histories attached (the file
        holds a constant-size progress record)."""
        resume = self.job.resume
        if resume is None:
            return None
        checkpoint = self.files.load_checkpoint(self.job.run_id, resume.checkpoint)
        progress = checkpoint["other_states"]["progress"]
        progress["train_loss_history"] = list(resume.train_loss_history)
        progress["val_loss_history"] = list(resume.val_loss_history)
        return checkpoint

    def _injected(self, fault: Fault, epoch: int) -> None:
        self.emit(FaultInjected(at=self.epoch_start, epoch=epoch, fault=fault))

    def on_epoch_start(self, epoch: int) -> None:
        self.results.wait_for_room(self._written)
        if self.results.stop_requested():
            raise StopRequested
        self.reached_epoch = epoch
        number = self.job.number
        if (crash := self.faults.crash(number, epoch)) is not None:
            self._injected(crash, epoch)
            raise InjectedCrash(crash.message)
        if (hang := self.faults.hang(number, epoch)) is not None:
            self._injected(hang, epoch)
            raise AttemptTimedOut
        cost = self.job.epoch_cost
        if (slow := self.faults.slow(epoch)) is not None:
            if epoch == slow.from_epoch:
                self._injected(slow, epoch)
            cost = slow.epoch_seconds
        end = self.epoch_start + cost
        if end > self.job.deadline:
            # The epoch would end past the deadline: the attempt ends there, the epoch is lost.
            raise AttemptTimedOut
        self.epoch_end = end

    def save_checkpoint(self, **checkpoint: Any) -> None:
        self._pending = checkpoint

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        assert self._pending is not None, "the trainer saves a checkpoint before each epoch end"
        checkpoint, self._pending = self._pending, None
        at = self.epoch_end
        progress = checkpoint["other_states"]["progress"]
        train, val = progress["train_loss_history"], progress["val_loss_history"]
        # The file holds a constant-size progress record; the histories go to the store.
        other = {**checkpoint["other_states"]}
        other["progress"] = {**progress, "train_loss_history": [], "val_loss_history": []}
        name = checkpoint_name(epoch)
        path = self.files.save_checkpoint(
            self.job.run_id, name, {**checkpoint, "other_states": other, "timestamp": isoformat(at)}
        )
        self.emit(
            EpochDone(
                at=at,
                epoch=epoch,
                name=name,
                path=self.files.relative(path),
                metrics=checkpoint["metrics"],
                train_loss=train[-1],
                val_loss=val[-1],
                best_val_loss=min(val),
            )
        )
        self.epoch_start = at


def run_attempt(job: AttemptJob) -> str:
    """Train the attempt to its end, writing every result; returns the folder."""
    import torch

    from qcog_mock.trainer import ExperimentError, train

    torch.set_num_threads(job.torch_threads)
    results = Results(job.folder)
    context = _Context(job, results)
    end: AttemptEnded
    try:
        outcome = train(context, job.dataset_path, params=job.params, gpu_instance=job.gpu_instance)
    except StopRequested:
        return job.folder
    except AttemptTimedOut:
        end = AttemptEnded(at=job.deadline, outcome="timed_out")
    except ExperimentError as error:
        end = AttemptEnded(
            at=context.epoch_start, outcome="crashed", reason=str(error), retryable=False
        )
    except Exception as error:
        where = f" at epoch {context.reached_epoch}" if context.reached_epoch else ""
        reason = f"crashed{where}: {type(error).__name__}: {error}"
        end = AttemptEnded(at=context.epoch_start, outcome="crashed", reason=reason)
    else:
        end = AttemptEnded(at=context.epoch_start, outcome="completed", metrics=outcome["metrics"])
    context.emit(end.model_copy(update={"reached_epoch": context.reached_epoch}))
    return job.folder
