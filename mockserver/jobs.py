"""Runs and their attempts on the simulated clock: the retry-extension rule, executed.

A run is ``pending`` until its first attempt starts (``start_delay`` after submission), then
``running``. Each attempt is a simulation process calling ``trainer.train`` with hooks that charge
every epoch its simulated cost:

- at the start of an epoch the cost is known; if the epoch would end after the attempt's deadline
  (``started_at + timeout``) the attempt sleeps to the deadline and times out — that partial epoch
  is lost;
- otherwise the epoch is computed (time stands still meanwhile), then committed at its end time:
  checkpoint stored, live metrics published.

An attempt ends ``completed``, ``timed_out``, ``crashed`` or ``cancelled``. A timed-out or crashed
attempt is followed, after ``retry_delay`` (the run ``pending`` again), by the next attempt —
which resumes from the run's last checkpoint — while attempts remain (``1 + retries``). Errors that
would repeat identically (the trainer's ``DatasetError`` / ``ConfigurationError``) fail the run
at once. Hence Σ attempt running time ≤ timeout × (1 + retries).

If the server stops mid-attempt, the attempt is picked up on restart from its last checkpoint at
the simulated time of that checkpoint: it does not count as a retry, and the run's timeline is the
one it would have had without the restart.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import Any

from qcog_mock.mockserver import costmodel
from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.runparams import RunParams
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.simulation import Process, Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.trainer import ExperimentError, train

logger = logging.getLogger(__name__)

TERMINAL = ("completed", "failed")


class AttemptTimedOut(Exception):
    pass


class AttemptCancelled(Exception):
    pass


class InjectedCrash(RuntimeError):
    pass


def checkpoint_name(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


class AttemptContext:
    """The trainer's context for one attempt: checkpoint hooks plus simulated-time accounting."""

    dataset_bucket = "local"
    dataset_format = "csv"

    def __init__(
        self,
        jobs: Jobs,
        process: Process,
        run: dict[str, Any],
        number: int,
        epoch_start: float,
        deadline: float,
        epoch_cost: float,
        faults: list[Any],
    ) -> None:
        self.jobs = jobs
        self.process = process
        self.status_id = run["id"]
        self.number = number
        self.epoch_start = epoch_start
        self.epoch_end = epoch_start
        self.deadline = deadline
        self.epoch_cost = epoch_cost
        self.faults = faults
        self.reached_epoch = 0
        self._pending: dict[str, Any] | None = None

    def load_last_checkpoint(self) -> dict[str, Any] | None:
        return self.jobs.last_checkpoint(self.status_id)

    def on_epoch_start(self, epoch: int) -> None:
        self.process.check()
        self.reached_epoch = epoch
        cost = self.epoch_cost
        for fault in self.faults:
            if fault.type == "crash" and (fault.attempt, fault.epoch) == (self.number, epoch):
                self.jobs.fault(self.status_id, fault, attempt=self.number, epoch=epoch)
                raise InjectedCrash(fault.message)
            hangs = fault.type == "hang" and fault.attempt == self.number
            if hangs and (fault.epoch is None or epoch >= fault.epoch):
                self.jobs.fault(self.status_id, fault, attempt=self.number, epoch=epoch)
                self.process.sleep_until(self.deadline)
                raise AttemptTimedOut
            if fault.type == "slow" and epoch >= fault.from_epoch:
                if epoch == fault.from_epoch:
                    self.jobs.fault(self.status_id, fault, attempt=self.number, epoch=epoch)
                cost = fault.epoch_seconds
        end = self.epoch_start + cost
        if end > self.deadline:
            self.process.sleep_until(self.deadline)
            raise AttemptTimedOut
        self.epoch_end = end

    def save_checkpoint(self, **checkpoint: Any) -> None:
        self._pending = checkpoint

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.process.sleep_until(self.epoch_end)
        assert self._pending is not None, "the trainer saves a checkpoint before each epoch end"
        self.jobs.commit_epoch(self.status_id, self.number, self._pending, self.epoch_end)
        self._pending = None
        self.epoch_start = self.epoch_end


class Jobs:
    def __init__(
        self,
        store: Store,
        sim: Simulation,
        files: Files,
        settings: Settings,
        emit: Callable[..., None],
    ) -> None:
        self.store = store
        self.sim = sim
        self.files = files
        self.settings = settings
        self.emit = emit
        self.server_faults: list[Any] = []  # the server-wide fault plan (/_emulator/faults)
        self._lock = threading.RLock()
        self._processes: dict[str, Process] = {}

    # Run documents ------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self.store.get("run", run_id)

    def save(self, run: dict[str, Any]) -> None:
        run["updated_at"] = isoformat(self.sim.clock.now())
        self.store.put("run", run, scope=run["project_id"])

    def _key(self, run: dict[str, Any]) -> str:
        # Ties at one simulated instant resolve in submission order.
        return f"run-{run['seq']:08d}"

    # Submission and scheduling ------------------------------------------------------------

    def submit(self, run: dict[str, Any]) -> None:
        self._schedule_attempt(run, 1, self.sim.clock.now() + self.settings.start_delay)

    def _schedule_attempt(self, run: dict[str, Any], number: int, at: float) -> None:
        run["next_attempt_at"] = isoformat(at)
        run["next_attempt_at_s"] = at
        self.save(run)
        self._spawn_attempt(run, number, at)

    def _spawn_attempt(self, run: dict[str, Any], number: int, at: float) -> None:
        run_id = run["id"]
        with self._lock:
            self._processes[run_id] = self.sim.spawn(
                at, self._key(run), lambda process: self._attempt(process, run_id, number)
            )

    def recover(self) -> None:
        """Pick up every unfinished run after a restart."""
        for run in self.store.list("run"):
            if run["status"] in TERMINAL:
                continue
            attempts = run["attempts"]
            if attempts and attempts[-1]["outcome"] is None:
                # Interrupted mid-attempt: go on from its last checkpoint, at that time.
                current = attempts[-1]
                resume_at = self._resume_time(run["id"], current)
                self._spawn_attempt(run, current["number"], resume_at)
            else:
                self._spawn_attempt(run, len(attempts) + 1, run["next_attempt_at_s"])

    def cancel(self, run_id: str, wait: float = 120.0) -> None:
        """Stop the run's attempt, if any, and wait until it has stopped."""
        with self._lock:
            process = self._processes.pop(run_id, None)
        if process is not None and not process.done.is_set():
            process.interrupt(AttemptCancelled())
            if not process.done.wait(wait):
                logger.warning("Attempt of run %s did not stop within %s s", run_id, wait)

    def close(self) -> None:
        with self._lock:
            self._processes.clear()

    # Attempts -----------------------------------------------------------------------------

    def _attempt(self, process: Process, run_id: str, number: int) -> None:
        try:
            process.check()
        except AttemptCancelled:
            return
        run = self.run(run_id)
        if run is None or run["status"] in TERMINAL:
            return
        params = RunParams.model_validate(run["params"])
        now = process.now
        attempts = run["attempts"]
        if attempts and attempts[-1]["number"] == number and attempts[-1]["outcome"] is None:
            attempt = attempts[-1]  # recovering an interrupted attempt
            epoch_start = self._resume_time(run_id, attempt)
        else:
            checkpoints = self.store.checkpoints(run_id)
            attempt = {
                "number": number,
                "started_at": isoformat(now),
                "deadline": isoformat(now + params.timeout),
                "ended_at": None,
                "outcome": None,
                "reason": None,
                "resumed_from_epoch": checkpoints[-1]["epoch"] if checkpoints else 0,
                "epochs_completed": 0,
                # Exact simulated times; the ISO fields above are rounded to the millisecond.
                "started_at_s": now,
                "deadline_s": now + params.timeout,
                "ended_at_s": None,
            }
            attempts.append(attempt)
            run["status"] = "running"
            run["current_attempt"] = number
            run["next_attempt_at"] = run["next_attempt_at_s"] = None
            self.save(run)
            self.emit("attempt.started", run, attempt=number)
            self.emit("run.running", run, attempt=number)
            epoch_start = now

        emulator = params.emulator
        context = AttemptContext(
            self,
            process,
            run,
            number,
            epoch_start=epoch_start,
            deadline=attempt["deadline_s"],
            epoch_cost=self.epoch_cost(run, params),
            faults=[*(emulator.faults if emulator else []), *self.server_faults],
        )
        dataset = self.store.get("dataset", run["dataset_id"])
        dataset_path = str(self.files.dataset(run["dataset_id"])) if dataset else "(deleted)"
        try:
            result = train(context, dataset_path, params=run["params"])
        except AttemptTimedOut:
            self._finish(
                run_id, number, "timed_out", context.deadline,
                f"timed out after {params.timeout} s (the per-attempt timeout) during epoch "
                f"{context.reached_epoch}; the partial epoch is lost",
            )  # fmt: skip
        except AttemptCancelled:
            self._finish(run_id, number, "cancelled", process.now, "cancelled: the run was deleted")
        except ExperimentError as error:
            self._finish(run_id, number, "crashed", process.now, str(error), retryable=False)
        except Exception as error:
            where = f" at epoch {context.reached_epoch}" if context.reached_epoch else ""
            self._finish(
                run_id, number, "crashed", process.now,
                f"crashed{where}: {type(error).__name__}: {error}",
            )  # fmt: skip
        else:
            self._finish(run_id, number, "completed", process.now, None, metrics=result["metrics"])

    def epoch_cost(self, run: dict[str, Any], params: RunParams) -> float:
        if params.emulator and params.emulator.epoch_seconds is not None:
            return params.emulator.epoch_seconds
        if self.settings.epoch_seconds is not None:
            return self.settings.epoch_seconds
        dataset = self.store.get("dataset", run["dataset_id"]) or {"number_of_rows": 0}
        return costmodel.epoch_seconds(
            params.hyperparameters, int(dataset["number_of_rows"]), params.cpu_count
        )

    def _resume_time(self, run_id: str, attempt: dict[str, Any]) -> float:
        """Where an interrupted attempt's next epoch starts: its last checkpoint, or its start."""
        checkpoints = self.store.checkpoints(run_id)
        if checkpoints and checkpoints[-1]["attempt"] == attempt["number"]:
            return max(attempt["started_at_s"], checkpoints[-1]["created_at_s"])
        return float(attempt["started_at_s"])

    def fault(self, run_id: str, fault: Any, **where: Any) -> None:
        """Record an injected fault in the timeline."""
        run = self.run(run_id)
        if run is not None:
            self.emit("fault.injected", run, fault=fault.model_dump(), **where)

    def last_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        checkpoints = self.store.checkpoints(run_id)
        if not checkpoints:
            return None
        return self.files.load_checkpoint(run_id, checkpoints[-1]["name"])

    def commit_epoch(self, run_id: str, number: int, checkpoint: dict[str, Any], at: float) -> None:
        """Store an epoch's checkpoint and publish its metrics, at simulated time ``at``."""
        epoch = int(checkpoint["current_epoch"])
        name = checkpoint_name(epoch)
        checkpoint = {**checkpoint, "timestamp": isoformat(at)}
        path = self.files.save_checkpoint(run_id, name, checkpoint)
        self.store.put_checkpoint(
            run_id,
            {
                "name": name,
                "epoch": epoch,
                "attempt": number,
                "run_id": run_id,
                "path": self.files.relative(path),
                "metrics": checkpoint["metrics"],
                "created_at": isoformat(at),
                "created_at_s": at,
            },
        )
        progress = checkpoint["other_states"]["progress"]
        with self._lock:
            run = self.run(run_id)
            if run is None:
                return
            attempt = run["attempts"][-1]
            attempt["epochs_completed"] = epoch - attempt["resumed_from_epoch"]
            validation = progress["val_loss_history"]
            run["metrics"] = {
                "epoch": epoch,
                "epochs": run["params"]["hyperparameters"]["epochs"],
                "train_loss": progress["train_loss_history"][-1],
                "val_loss": validation[-1],
                "best_val_loss": min(validation),
                "train_loss_history": progress["train_loss_history"],
                "val_loss_history": validation,
            }
            self.save(run)
        self.emit(
            "checkpoint.saved",
            run,
            attempt=number,
            checkpoint=name,
            epoch=epoch,
            train_loss=run["metrics"]["train_loss"],
            val_loss=run["metrics"]["val_loss"],
        )

    def _finish(
        self,
        run_id: str,
        number: int,
        outcome: str,
        at: float,
        reason: str | None,
        *,
        retryable: bool = True,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            run = self.run(run_id)
            if run is None:
                return
            attempt = run["attempts"][-1]
            attempt.update(ended_at=isoformat(at), ended_at_s=at, outcome=outcome, reason=reason)
            ended = copy.deepcopy(run)  # the run as the attempt ended, for its event
            follow: tuple[str, dict[str, Any]] | None = None
            retry_at: float | None = None
            if outcome == "completed":
                run.update(status="completed", metrics=metrics)
                follow = ("run.completed", {"attempt": number})
            elif outcome != "cancelled":
                max_attempts = run["max_attempts"]
                message = f"Attempt {number} of {max_attempts} {reason}."
                if not retryable:
                    message = (
                        f"Attempt {number} of {max_attempts} failed with an error that would "
                        f"repeat on every attempt, so the run failed without retrying: {reason}"
                    )
                elif number < max_attempts:
                    retry_at = at + self.settings.retry_delay
                else:
                    message += (
                        f" Retries exhausted: {max_attempts} of {max_attempts} attempts used "
                        f"(retries={max_attempts - 1}); the run failed."
                    )
                run["errors"] = [*run.get("errors", []), message]
                if retry_at is not None:
                    run.update(
                        status="pending",
                        next_attempt_at=isoformat(retry_at),
                        next_attempt_at_s=retry_at,
                    )
                    follow = ("run.pending", {"attempt": number + 1, "reason": message})
                else:
                    run["status"] = "failed"
                    run["metrics"] = {**(run.get("metrics") or {}), "error": message}
                    follow = ("run.failed", {"attempt": number, "reason": message})
            # One write for the attempt's end and what follows it: a restart finds either both
            # or neither, never an ended attempt with nothing scheduled after it.
            self.save(run)
            self.emit(f"attempt.{outcome}", ended, attempt=number, reason=reason)
            if follow is not None:
                self.emit(follow[0], run, **follow[1])
            if retry_at is not None:
                self._spawn_attempt(run, number + 1, retry_at)


def runtime_seconds(run: dict[str, Any], now: float) -> float:
    """Σ attempt running time (an unfinished attempt counts up to now)."""
    total = 0.0
    for attempt in run["attempts"]:
        end = attempt["ended_at_s"] if attempt["ended_at_s"] is not None else now
        total += max(0.0, end - attempt["started_at_s"])
    return total


def runtime_limit(run: dict[str, Any]) -> float:
    return float(run["timeout"] * run["max_attempts"])
