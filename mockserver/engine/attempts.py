"""The attempt engine: each attempt of a run is a simulation process that trains on the clock.

The README's "Runs, attempts and the retry rule" section is the specification; ``retry.py`` holds
the rule itself and ``faults.py`` what goes wrong on purpose. Here: scheduling attempts, charging
each epoch its simulated cost through the trainer's hooks, committing each epoch at its end
time, ending attempts (``completed``, ``timed_out``, ``crashed``, ``cancelled``) and picking up
unfinished runs after a restart.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable
from typing import Any

from qcog_mock.mockserver import costmodel
from qcog_mock.mockserver.clock import isoformat
from qcog_mock.mockserver.documents import (
    Attempt,
    Checkpoint,
    Outcome,
    Run,
    load_checkpoints,
    load_run,
    save_run,
)
from qcog_mock.mockserver.engine.faults import FaultPlan, ServerFaults
from qcog_mock.mockserver.engine.retry import after_attempt
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.simulation import Process, Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.trainer import ExperimentError, train

logger = logging.getLogger(__name__)

Emit = Callable[..., None]


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

    def __init__(
        self,
        engine: Engine,
        process: Process,
        run: Run,
        number: int,
        epoch_start: float,
        deadline: float,
        epoch_cost: float,
        faults: FaultPlan,
    ) -> None:
        self.engine = engine
        self.process = process
        self.run = run
        self.number = number
        self.epoch_start = epoch_start
        self.epoch_end = epoch_start
        self.deadline = deadline
        self.epoch_cost = epoch_cost
        self.faults = faults
        self.reached_epoch = 0
        self._pending: dict[str, Any] | None = None

    def load_last_checkpoint(self) -> dict[str, Any] | None:
        return self.engine.last_checkpoint(self.run.id)

    def _injected(self, fault: Any, epoch: int) -> None:
        self.engine.emit(
            "fault.injected", self.run, fault=fault.model_dump(), attempt=self.number, epoch=epoch
        )

    def on_epoch_start(self, epoch: int) -> None:
        self.process.check()
        self.reached_epoch = epoch
        if (crash := self.faults.crash(self.number, epoch)) is not None:
            self._injected(crash, epoch)
            raise InjectedCrash(crash.message)
        if (hang := self.faults.hang(self.number, epoch)) is not None:
            self._injected(hang, epoch)
            self.process.sleep_until(self.deadline)
            raise AttemptTimedOut
        cost = self.epoch_cost
        if (slow := self.faults.slow(epoch)) is not None:
            if epoch == slow.from_epoch:
                self._injected(slow, epoch)
            cost = slow.epoch_seconds
        end = self.epoch_start + cost
        if end > self.deadline:
            # The epoch would end past the deadline: the attempt ends there, the epoch is lost.
            self.process.sleep_until(self.deadline)
            raise AttemptTimedOut
        self.epoch_end = end

    def save_checkpoint(self, **checkpoint: Any) -> None:
        self._pending = checkpoint

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.process.sleep_until(self.epoch_end)
        assert self._pending is not None, "the trainer saves a checkpoint before each epoch end"
        self.engine.commit_epoch(self.run.id, self.number, self._pending, self.epoch_end)
        self._pending = None
        self.epoch_start = self.epoch_end


class Engine:
    def __init__(
        self,
        store: Store,
        sim: Simulation,
        files: Files,
        settings: Settings,
        server_faults: ServerFaults,
        emit: Emit,
    ) -> None:
        self.store = store
        self.sim = sim
        self.files = files
        self.settings = settings
        self.server_faults = server_faults
        self.emit = emit
        self._lock = threading.RLock()
        self._processes: dict[str, Process] = {}

    def save(self, run: Run) -> None:
        save_run(self.store, run, self.sim.clock.now())

    # Submission and scheduling ------------------------------------------------------------

    def schedule_first(self, run: Run) -> None:
        """Store a new run with its first attempt's time (after provisioning)."""
        run.next_attempt_at = self.sim.clock.now() + self.settings.start_delay
        self.save(run)

    def start(self, run: Run, number: int) -> None:
        """Start attempt ``number`` at the run's scheduled time."""
        assert run.next_attempt_at is not None
        self._spawn_attempt(run, number, run.next_attempt_at)

    def _spawn_attempt(self, run: Run, number: int, at: float) -> None:
        run_id = run.id
        key = f"run-{run.seq:08d}"  # ties at one simulated instant: submission order
        with self._lock:
            self._processes[run_id] = self.sim.spawn(
                at, key, lambda process: self._attempt(process, run_id, number)
            )

    def recover(self) -> None:
        """Pick up every unfinished run after a restart. Total: a run found in a state it
        cannot go on from is repaired or failed with the reason; the server always starts."""
        for doc in self.store.list("run"):
            try:
                self._recover(Run.from_doc(doc))
            except Exception as error:
                logger.exception("Run %s could not be recovered", doc.get("id"))
                self._fail_unrecoverable(doc, error)

    def _recover(self, run: Run) -> None:
        if run.finished:
            return
        current = run.last_attempt
        if current is not None and current.running:
            # Interrupted mid-attempt: go on from its last checkpoint, at that time.
            self._spawn_attempt(run, current.number, self._resume_time(run.id, current))
            return
        if run.next_attempt_at is None:
            # Nothing scheduled after the last attempt (written by an older version, or
            # interrupted between writes): schedule the next attempt now.
            run.next_attempt_at = self.sim.clock.now()
            self.save(run)
        self._spawn_attempt(run, len(run.attempts) + 1, run.next_attempt_at)

    def _fail_unrecoverable(self, doc: dict[str, Any], error: Exception) -> None:
        message = f"The run could not be recovered after a restart: {type(error).__name__}: {error}"
        with self.store.transaction():
            doc = {**doc, "status": "failed", "errors": [*doc.get("errors", []), message]}
            self.store.put("run", doc, scope=doc.get("project_id", ""))
            self.store.add_event(
                self.sim.clock.now(),
                "run.failed",
                doc.get("id"),
                {
                    "time": isoformat(self.sim.clock.now()),
                    "type": "run.failed",
                    "run_id": doc.get("id"),
                    "run_name": doc.get("name"),
                    "status": "failed",
                    "reason": message,
                },
            )

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
        run = load_run(self.store, run_id)
        if run is None or run.finished:
            return
        params = run.params
        now = process.now
        current = run.last_attempt
        if current is not None and current.number == number and current.running:
            attempt = current  # recovering an interrupted attempt
            epoch_start = self._resume_time(run_id, attempt)
        else:
            checkpoints = self.store.checkpoints(run_id)
            attempt = Attempt(
                number=number,
                started_at=now,
                deadline=now + params.timeout,
                resumed_from_epoch=checkpoints[-1]["epoch"] if checkpoints else 0,
            )
            run.attempts.append(attempt)
            run.move_to("running")
            run.current_attempt = number
            run.next_attempt_at = None
            with self.store.transaction():
                self.save(run)
                self.emit("attempt.started", run, attempt=number)
                self.emit("run.running", run, attempt=number)
            epoch_start = now

        try:
            context = AttemptContext(
                self,
                process,
                run,
                number,
                epoch_start=epoch_start,
                deadline=attempt.deadline,
                epoch_cost=self.epoch_cost(run),
                faults=self.server_faults.for_run(params.faults),
            )
        except Exception as error:  # it would fail the same way on every attempt
            logger.exception("Attempt %s of run %s could not start", number, run_id)
            self._finish(
                run_id, number, "crashed", process.now,
                f"could not start: {type(error).__name__}: {error}", retryable=False,
            )  # fmt: skip
            return
        dataset = self.store.get("dataset", run.dataset_id)
        dataset_path = str(self.files.dataset(run.dataset_id)) if dataset else "(deleted)"
        experiment_params = {**params.stored(), "hyperparameters": params.hyperparameters}
        try:
            result = train(context, dataset_path, params=experiment_params)
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

    def epoch_cost(self, run: Run) -> float:
        params = run.params
        if params.emulator and params.emulator.epoch_seconds is not None:
            return params.emulator.epoch_seconds
        if self.settings.epoch_seconds is not None:
            return self.settings.epoch_seconds
        dataset = self.store.get("dataset", run.dataset_id) or {"number_of_rows": 0}
        return costmodel.epoch_seconds(
            params.hyperparameters, int(dataset["number_of_rows"]), params.cpu_count
        )

    def _resume_time(self, run_id: str, attempt: Attempt) -> float:
        """Where an interrupted attempt's next epoch starts: its last checkpoint, or its start."""
        checkpoints = load_checkpoints(self.store, run_id)
        if checkpoints and checkpoints[-1].attempt == attempt.number:
            return max(attempt.started_at, checkpoints[-1].created_at)
        return attempt.started_at

    def last_checkpoint(self, run_id: str) -> dict[str, Any] | None:
        """The last checkpoint as the trainer wrote it: its file, plus the loss history kept
        in the store (the file holds a constant-size progress record)."""
        checkpoints = self.store.checkpoints(run_id)
        if not checkpoints:
            return None
        checkpoint = self.files.load_checkpoint(run_id, checkpoints[-1]["name"])
        progress = checkpoint["other_states"]["progress"]
        train, val = self.store.loss_history(run_id, up_to=int(checkpoint["current_epoch"]))
        progress["train_loss_history"], progress["val_loss_history"] = train, val
        return checkpoint

    def commit_epoch(self, run_id: str, number: int, checkpoint: dict[str, Any], at: float) -> None:
        """Store an epoch's checkpoint and publish its metrics, at simulated time ``at``."""
        epoch = int(checkpoint["current_epoch"])
        name = checkpoint_name(epoch)
        progress = checkpoint["other_states"]["progress"]
        train_history, val_history = progress["train_loss_history"], progress["val_loss_history"]
        # Each epoch writes a constant amount: the histories go to the store one row at a time.
        other = {**checkpoint["other_states"]}
        other["progress"] = {**progress, "train_loss_history": [], "val_loss_history": []}
        stored = {**checkpoint, "other_states": other, "timestamp": isoformat(at)}
        path = self.files.save_checkpoint(run_id, name, stored)
        record = Checkpoint(
            name=name,
            epoch=epoch,
            attempt=number,
            run_id=run_id,
            path=self.files.relative(path),
            metrics=checkpoint["metrics"],
            created_at=at,
        )
        with self._lock, self.store.transaction():  # the checkpoint, the run and the event
            self.store.put_checkpoint(run_id, record.to_doc())
            self.store.add_epoch(run_id, epoch, train_history[-1], val_history[-1])
            run = load_run(self.store, run_id)
            if run is None:
                return
            attempt = run.attempts[-1]
            attempt.epochs_completed = epoch - attempt.resumed_from_epoch
            run.metrics = {  # live metrics; the API adds the histories when it shows the run
                "epoch": epoch,
                "epochs": run.params.hyperparameters.epochs,
                "train_loss": train_history[-1],
                "val_loss": val_history[-1],
                "best_val_loss": min(val_history),
            }
            self.save(run)
            self.emit(
                "checkpoint.saved",
                run,
                attempt=number,
                checkpoint=name,
                epoch=epoch,
                train_loss=run.metrics["train_loss"],
                val_loss=run.metrics["val_loss"],
            )

    def _finish(
        self,
        run_id: str,
        number: int,
        outcome: Outcome,
        at: float,
        reason: str | None,
        *,
        retryable: bool = True,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        with self._lock:
            run = load_run(self.store, run_id)
            if run is None:
                return
            attempt = run.attempts[-1]
            attempt.ended_at, attempt.outcome, attempt.reason = at, outcome, reason
            ended = copy.deepcopy(run)  # the run as the attempt ended, for its event
            follow = after_attempt(
                outcome,
                number,
                run.max_attempts,
                reason,
                at=at,
                retry_delay=self.settings.retry_delay,
                retryable=retryable,
            )
            if follow is not None:
                run.move_to(follow.status)
                if follow.error is not None:
                    run.errors.append(follow.error)
                if follow.status == "completed":
                    run.metrics = metrics
                elif follow.status == "failed":
                    run.metrics = {**(run.metrics or {}), "error": follow.error}
                run.next_attempt_at = follow.retry_at
            # One write for the attempt's end, what follows it and their events: a restart finds
            # all of it or none, never an ended attempt with nothing scheduled after it.
            with self.store.transaction():
                self.save(run)
                self.emit(f"attempt.{outcome}", ended, attempt=number, reason=reason)
                if follow is not None:
                    self.emit(f"run.{follow.status}", run, **_follow_fields(follow, number))
            if follow is not None and follow.retry_at is not None:
                self._spawn_attempt(run, number + 1, follow.retry_at)


def _follow_fields(follow: Any, number: int) -> dict[str, Any]:
    if follow.status == "pending":
        return {"attempt": number + 1, "reason": follow.error}
    if follow.status == "failed":
        return {"attempt": number, "reason": follow.error}
    return {"attempt": number}
