"""One attempt, trained in a worker process, ahead of the simulated clock.

An epoch's simulated cost is known when it starts, so a worker needs nothing from the clock: it
knows the attempt's start, its deadline, each epoch's cost and the fault plan, and computes every
epoch's simulated end time itself. It writes each result — an injected fault, an epoch (its
checkpoint file first), the attempt's end — as one numbered JSON file in the attempt's folder of
the data dir; the engine commits them in order, each at its simulated time. So the timeline is the
one a serial run would have, whatever the number of workers.

Runs where the executor puts it: a local process (``engine/executors.py``) or a Dask worker that
shares the data dir. It imports no server module but this package's faults and the files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.engine.faults import FaultPlan, parse_faults


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


class AttemptTimedOut(Exception):
    pass


class InjectedCrash(RuntimeError):
    pass


class StopRequested(Exception):
    """The engine no longer wants this attempt (deleted, cancelled, shut down)."""


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
    faults: list[dict[str, Any]] = field(default_factory=list)
    resume: dict[str, Any] | None = None  # the last checkpoint, loss histories attached
    torch_threads: int = 1


class Results:
    """The numbered result files of one attempt (written whole: temporary name, then rename)."""

    STOP = "stop"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def write(self, index: int, result: dict[str, Any]) -> None:
        final = self.folder / f"{index:06d}.json"
        partial = final.with_suffix(".partial")
        partial.write_text(json.dumps(result))
        os.replace(partial, final)

    def read(self, index: int) -> dict[str, Any] | None:
        try:
            return json.loads((self.folder / f"{index:06d}.json").read_text())
        except FileNotFoundError:
            return None

    def request_stop(self) -> None:
        (self.folder / self.STOP).touch()

    def stop_requested(self) -> bool:
        return (self.folder / self.STOP).exists()


class _Context:
    """The trainer's hooks, charging each epoch its simulated cost without any clock."""

    def __init__(self, job: AttemptJob, results: Results) -> None:
        from qcog_mock.mockserver.files import Files

        self.job = job
        self.results = results
        self.files = Files(Path(job.data_root))
        self.faults = FaultPlan(tuple(parse_faults(job.faults)))
        self.epoch_start = job.epoch_start
        self.epoch_end = job.epoch_start
        self.reached_epoch = 0
        self._written = 0
        self._pending: dict[str, Any] | None = None

    def emit(self, result: dict[str, Any]) -> None:
        self._written += 1
        self.results.write(self._written, result)

    def load_last_checkpoint(self) -> dict[str, Any] | None:
        return self.job.resume

    def _injected(self, fault: Any, epoch: int) -> None:
        self.emit(
            {"kind": "fault", "at": self.epoch_start, "fault": fault.model_dump(), "epoch": epoch}
        )

    def on_epoch_start(self, epoch: int) -> None:
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
            {
                "kind": "epoch",
                "at": at,
                "epoch": epoch,
                "name": name,
                "path": self.files.relative(path),
                "metrics": checkpoint["metrics"],
                "train_loss": train[-1],
                "val_loss": val[-1],
                "best_val_loss": min(val),
            }
        )
        self.epoch_start = at


def run_attempt(job: AttemptJob) -> str:
    """Train the attempt to its end, writing every result; returns the folder."""
    import torch

    from qcog_mock.trainer import ExperimentError, train

    torch.set_num_threads(job.torch_threads)
    results = Results(job.folder)
    context = _Context(job, results)
    end: dict[str, Any]
    try:
        outcome = train(context, job.dataset_path, params=job.params)
    except StopRequested:
        return job.folder
    except AttemptTimedOut:
        end = {"outcome": "timed_out", "at": job.deadline}
    except ExperimentError as error:
        end = {"outcome": "crashed", "at": context.epoch_start, "reason": str(error)}
        end["retryable"] = False
    except Exception as error:
        where = f" at epoch {context.reached_epoch}" if context.reached_epoch else ""
        reason = f"crashed{where}: {type(error).__name__}: {error}"
        end = {"outcome": "crashed", "at": context.epoch_start, "reason": reason}
    else:
        end = {"outcome": "completed", "at": context.epoch_start, "metrics": outcome["metrics"]}
    context.emit({"kind": "end", "reached_epoch": context.reached_epoch, **end})
    return job.folder
