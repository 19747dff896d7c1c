"""The attempt engine: scheduling attempts and committing what their workers compute.

The README's "Runs, attempts and the retry rule" section is the specification; ``retry.py`` holds
the rule, ``mockserver/faults.py`` what goes wrong on purpose, ``worker.py`` the training of one
attempt in a worker process. Each attempt is also a simulation process here, the attempt's
committer: it starts the worker, then takes the worker's results one by one — waiting, with the
clock held, for a result not yet computed — and commits each at its simulated time. Workers compute
ahead and in parallel; the clock never passes a time a worker may still produce an event for, so
timelines are those of serial execution. Attempts end ``completed``, ``timed_out``, ``crashed``
(also when the worker dies or exceeds the wall-time guard, or the executor fails in any way) or
``cancelled`` (the worker is stopped). No failure of the executor escapes an attempt: each is a
crashed attempt with its reason, retried as the rule says, so no run stays ``running`` with nothing
computing it (``stranded`` checks that).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import threading
from concurrent.futures import Executor, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qcog_mock.mockserver import costmodel, s3
from qcog_mock.mockserver.clock import monotonic
from qcog_mock.mockserver.documents import (
    TERMINAL,
    Attempt,
    Checkpoint,
    Outcome,
    Run,
)
from qcog_mock.mockserver.engine.protocol import (
    AttemptEnded,
    EpochDone,
    FaultInjected,
    Results,
    UnreadableResult,
    WorkerResult,
)
from qcog_mock.mockserver.engine.retry import after_attempt
from qcog_mock.mockserver.engine.worker import AttemptJob, Resume, run_attempt
from qcog_mock.mockserver.faults import ServerFaults
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.records import Records
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.simulation import Process, Simulation, SimulationStopped
from qcog_mock.mockserver.store import Store

if TYPE_CHECKING:  # platform/ imports the engine: its timeline is named for types only
    from qcog_mock.mockserver.platform.timeline import Emitter

logger = logging.getLogger(__name__)


class CannotStart(Exception):
    """An attempt that cannot begin for a reason the user can fix, said as it is."""


class AttemptCancelled(Exception):
    pass


POLL_SECONDS = 0.002  # how often a committer looks for its worker's next result


class Engine:
    def __init__(
        self,
        store: Store,
        sim: Simulation,
        files: Files,
        settings: Settings,
        server_faults: ServerFaults,
        timeline: Emitter,
        executor: Executor,
    ) -> None:
        self.executor = executor
        self._slots = threading.BoundedSemaphore(settings.workers)  # attempts computing at once
        self.store = store  # recovery reads the raw documents: they may not parse
        self.records = Records(store)
        self.sim = sim
        self.files = files
        self.settings = settings
        self.server_faults = server_faults
        self.timeline = timeline
        self._lock = threading.RLock()
        self._processes: dict[str, Process] = {}
        self._computing: dict[str, Results] = {}  # run id -> its worker's results, while it runs

    def save(self, run: Run) -> None:
        run.updated_at = self.sim.clock.now()
        self.records.runs.put(run)

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
        for doc in self.store.documents("run"):
            try:
                self._recover(Run.from_doc(doc))
            except Exception as error:
                logger.exception("Run %s could not be recovered", doc.get("id"))
                self._fail_run(
                    doc,
                    "The run could not be recovered after a restart: "
                    f"{type(error).__name__}: {error}",
                )

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

    def _fail_run(self, doc: dict[str, Any], message: str) -> None:
        """Fail a run that cannot go on, from its stored document (which may not parse: then
        its event names it from the document, and no webhook can be addressed)."""
        doc = {**doc, "status": "failed", "errors": [*doc.get("errors", []), message]}
        try:
            run: Run | None = Run.from_doc(doc)
        except Exception:
            run = None
        with self.store.transaction():
            self.store.put("run", doc, scope=doc.get("project_id", ""))
            if run is not None:
                self.timeline.emit("run.failed", run, reason=message)
            else:
                named = {"run_id": doc.get("id"), "run_name": doc.get("name"), "status": "failed"}
                self.timeline.emit("run.failed", None, **named, reason=message)

    def cancel(self, run_id: str, wait: float = 120.0) -> None:
        """Stop the run's attempt, if any, and wait until it has stopped."""
        with self._lock:
            process = self._processes.pop(run_id, None)
        if process is not None and not process.done.is_set():
            process.interrupt(AttemptCancelled())
            if not process.done.wait(wait):
                logger.warning("Attempt of run %s did not stop within %s s", run_id, wait)

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the attempts' processes to end; the simulation is closed first, so each
        stops its worker and ends. Only then may the caller remove the files they write."""
        with self._lock:
            processes = [*self._processes.values()]
            self._processes.clear()
        deadline = monotonic() + timeout
        for process in processes:
            if not process.join(max(0.0, deadline - monotonic())):
                logger.warning(
                    "The attempt process %s did not end within %s s", process.key, timeout
                )

    def stranded(self) -> list[str]:
        """The runs ``running`` with no attempt process to end them: always none, unless the
        engine has a bug (the watchdog the tests assert on)."""
        with self._lock:
            live = {run_id for run_id, p in self._processes.items() if not p.done.is_set()}
        return [
            doc["id"]
            for doc in self.store.documents("run")
            if doc.get("status") == "running" and doc["id"] not in live
        ]

    # Attempts -----------------------------------------------------------------------------

    def _attempt(self, process: Process, run_id: str, number: int) -> None:
        """An attempt's process, total: whatever fails in the engine itself ends the attempt
        ``crashed`` (retried as usual) or, if it could not even begin, fails the run with the
        reason — never a run left ``running`` or ``pending`` with nothing to move it on."""
        try:
            self._run_attempt(process, run_id, number)
        except Exception as error:
            logger.exception("Attempt %s of run %s failed in the engine", number, run_id)
            reason = f"the emulator failed: {type(error).__name__}: {error}"
            try:
                run = self.records.runs.get(run_id)
            except Exception:  # its stored document does not parse
                run = None
            attempt = run.last_attempt if run is not None else None
            if attempt is not None and attempt.number == number and attempt.running:
                self._finish(run_id, number, "crashed", process.now, f"crashed: {reason}")
                return
            doc = self.store.get("run", run_id)
            if doc is not None and doc.get("status") not in TERMINAL:
                self._fail_run(doc, f"Attempt {number} could not begin: {reason}")

    def _run_attempt(self, process: Process, run_id: str, number: int) -> None:
        try:
            process.check()
        except AttemptCancelled:
            return
        run = self.records.runs.get(run_id)
        if run is None or run.finished:
            return
        params = run.params
        now = process.now
        current = run.last_attempt
        if current is not None and current.number == number and current.running:
            attempt = current  # recovering an interrupted attempt
            epoch_start = self._resume_time(run_id, attempt)
        else:
            checkpoints = self.records.checkpoints(run_id)
            attempt = Attempt(
                number=number,
                started_at=now,
                deadline=now + params.timeout,
                resumed_from_epoch=checkpoints[-1].epoch if checkpoints else 0,
            )
            run.attempts.append(attempt)
            run.move_to("running")
            run.current_attempt = number
            run.next_attempt_at = None
            with self.store.transaction():
                self.save(run)
                notes = {"notes": run.notes} if run.notes else {}
                self.timeline.emit("attempt.started", run, attempt=number, **notes)
                self.timeline.emit("run.running", run, attempt=number)
            epoch_start = now

        try:
            job = self._job(run, number, epoch_start, attempt.deadline)
        except Exception as error:  # it would fail the same way on every attempt
            if isinstance(error, CannotStart):
                why = str(error)
            else:
                logger.exception("Attempt %s of run %s could not start", number, run_id)
                why = f"{type(error).__name__}: {error}"
            self._finish(
                run_id, number, "crashed", process.now, f"could not start: {why}", retryable=False
            )
            return
        self._commit_worker(process, run, number, job)

    def _job(self, run: Run, number: int, epoch_start: float, deadline: float) -> AttemptJob:
        params = run.params
        # Each job its own folder, by a generation counted across restarts: a worker of an
        # earlier try (a Dask job still running after the server was killed) writes into a
        # folder no one reads, and that is removed.
        generation = int(self.store.setting("attempt_generation") or 0) + 1
        self.store.set_setting("attempt_generation", generation)
        folder = self.files.make_attempt_folder(run.id, number, generation)
        dataset = self.records.datasets.get(run.dataset_id)
        if dataset is not None and not dataset.readable:
            raise CannotStart(s3.no_access(dataset))
        return AttemptJob(
            run_id=run.id,
            number=number,
            folder=str(folder),
            data_root=str(self.files.root),
            dataset_path=str(self.files.dataset(run.dataset_id)) if dataset else "(deleted)",
            params={**params.stored(), "hyperparameters": params.hyperparameters},
            epoch_start=epoch_start,
            deadline=deadline,
            epoch_cost=self.epoch_cost(run),
            faults=self.server_faults.for_run(params.faults).faults,
            resume=self.resume_point(run.id),
            torch_threads=self.settings.worker_threads,
            # Notes are made at submission for exactly the runs that would have had a GPU.
            gpu_instance=bool(run.notes),
        )

    def _commit_worker(self, process: Process, run: Run, number: int, job: AttemptJob) -> None:
        """Run the attempt's worker and commit its results, each at its simulated time."""
        results = Results(job.folder)
        worker: Future[Any] | None = None
        try:
            worker = self._start_worker(process, run.id, job)
            for index in itertools.count(1):
                result = self._next_result(process, results, index, worker)
                process.sleep_until(result.at)
                match result:
                    case FaultInjected(fault=fault, epoch=epoch):
                        self.timeline.emit(
                            "fault.injected", run, fault=fault.model_dump(), attempt=number,
                            epoch=epoch,
                        )  # fmt: skip
                    case EpochDone():
                        self.commit_epoch(run.id, number, result)
                    case AttemptEnded():
                        self._end(run, number, result)
                        return
                results.consume(index)
        except AttemptCancelled:
            self._stop_worker(worker, results)
            self._finish(run.id, number, "cancelled", process.now, "cancelled: the run was deleted")
        except SimulationStopped:  # the server stops: the attempt is picked up at restart
            self._stop_worker(worker, results)
            raise
        except Exception as error:  # the executor failed us: a crashed attempt, retried
            logger.warning("Attempt %s of run %s: %s", number, run.id, error, exc_info=True)
            self._stop_worker(worker, results)
            reason = f"crashed: the worker failed: {type(error).__name__}: {error}"
            self._finish(run.id, number, "crashed", process.now, reason)
        finally:
            with self._lock:
                self._computing.pop(run.id, None)
            # Its results are committed or abandoned: the folder goes (an interrupted attempt
            # starts again from its last checkpoint, in a new folder).
            self.files.remove_attempt_folder(Path(job.folder))

    def _start_worker(self, process: Process, run_id: str, job: AttemptJob) -> Future[Any]:
        # A free worker slot. The wait gives up the kernel: other runs go on up to this
        # attempt's first result (the clock may not pass it). Workers waiting at their
        # lookahead bound for a clock held there would wait for ever: their bounds are lifted.
        # A deleted run or a stopping server ends the wait.
        acquired = self._slots.acquire(blocking=False)
        if not acquired:
            with self._lock:
                for waiting in self._computing.values():
                    waiting.lift_bound()

            def free_slot() -> bool:
                nonlocal acquired
                acquired = self._slots.acquire(timeout=0.05)
                return acquired

            try:
                process.wait_off_baton(free_slot, hold=earliest_result(job))
            except BaseException:
                if acquired:
                    self._slots.release()
                raise
        try:
            with self._lock:
                self._computing[run_id] = Results(job.folder)
            worker = self.executor.submit(run_attempt, job)
        except BaseException:
            self._slots.release()
            raise
        worker.add_done_callback(lambda _: self._slots.release())
        return worker

    def _next_result(
        self, process: Process, results: Results, index: int, worker: Future[Any]
    ) -> WorkerResult:
        """Result ``index`` of the worker, once written; the clock waits meanwhile. A worker
        that cannot produce it is a crashed attempt."""
        waited_since = monotonic()
        while True:
            try:
                if (result := results.read(index)) is not None:
                    return result
                process.check()  # a deleted run or a stopping server ends the wait
                if worker.done() and (result := results.read(index)) is None:
                    error = worker.exception() or "the worker ended without a result"
                    return AttemptEnded(
                        at=process.now, outcome="crashed", reason=f"crashed: {error}"
                    )
            except UnreadableResult as error:
                self._stop_worker(worker, results)
                return AttemptEnded(at=process.now, outcome="crashed", reason=f"crashed: {error}")
            guard = self.settings.worker_wall_seconds
            if monotonic() - waited_since > guard:
                self._stop_worker(worker, results)
                return AttemptEnded(at=process.now, outcome="crashed", reason=(
                    f"crashed: the worker computed one epoch for more than {guard:g} wall "
                    "seconds (the wall-time guard) and was stopped"
                ))  # fmt: skip
            wait([worker], timeout=POLL_SECONDS)

    def _stop_worker(self, worker: Future[Any] | None, results: Results) -> None:
        """End the worker: a kill where the executor can (at once), and a stop request that a
        worker elsewhere (Dask) reads at its next epoch. Both tolerate a worker long gone."""
        kill = getattr(self.executor, "kill", None)
        if worker is not None and kill is not None:
            kill(worker)
        results.request_stop()

    def _end(self, run: Run, number: int, end: AttemptEnded) -> None:
        if end.outcome == "timed_out":
            reason = (
                f"timed out after {run.params.timeout} s (the per-attempt timeout) during epoch "
                f"{end.reached_epoch}; the partial epoch is lost"
            )
            self._finish(run.id, number, "timed_out", end.at, reason)
        elif end.outcome == "crashed":
            reason = end.reason or "crashed"
            self._finish(run.id, number, "crashed", end.at, reason, retryable=end.retryable)
        else:
            self._finish(run.id, number, "completed", end.at, None, metrics=end.metrics)

    def epoch_cost(self, run: Run) -> float:
        params = run.params
        if params.emulator and params.emulator.epoch_seconds is not None:
            return params.emulator.epoch_seconds
        if self.settings.epoch_seconds is not None:
            return self.settings.epoch_seconds
        dataset = self.records.datasets.get(run.dataset_id)
        rows = (dataset.number_of_rows or 0) if dataset is not None else 0
        return costmodel.epoch_seconds(params.hyperparameters, rows, params.cpu_count)

    def _resume_time(self, run_id: str, attempt: Attempt) -> float:
        """Where an interrupted attempt's next epoch starts: its last checkpoint, or its start."""
        checkpoints = self.records.checkpoints(run_id)
        if checkpoints and checkpoints[-1].attempt == attempt.number:
            return max(attempt.started_at, checkpoints[-1].created_at)
        return attempt.started_at

    def resume_point(self, run_id: str) -> Resume | None:
        """Where the run's next attempt resumes: its last checkpoint, with the loss histories
        the store keeps up to that epoch."""
        checkpoints = self.records.checkpoints(run_id)
        if not checkpoints:
            return None
        last = checkpoints[-1]
        train, val = self.store.loss_history(run_id, up_to=last.epoch)
        return Resume(last.name, train, val)

    def commit_epoch(self, run_id: str, number: int, result: EpochDone) -> None:
        """Record an epoch the worker computed (its checkpoint file is written), at its time."""
        epoch, name = result.epoch, result.name
        try:
            size = self.files.checkpoint(run_id, name).stat().st_size
        except OSError:
            size = 0
        record = Checkpoint(
            name=name,
            epoch=epoch,
            attempt=number,
            run_id=run_id,
            path=result.path,
            metrics=result.metrics,
            created_at=result.at,
            size_bytes=size,
        )
        with self._lock, self.store.transaction():  # the checkpoint, the run and the event
            self.store.put_checkpoint(run_id, record.to_doc())
            self.store.add_epoch(run_id, epoch, result.train_loss, result.val_loss)
            run = self.records.runs.get(run_id)
            if run is None:
                return
            pruned, run.disk_bytes = self._retain(run_id)
            attempt = run.attempts[-1]
            attempt.epochs_completed = epoch - attempt.resumed_from_epoch
            run.metrics = {  # live metrics; the API adds the histories when it shows the run
                "epoch": epoch,
                "epochs": run.params.hyperparameters.epochs,
                "train_loss": result.train_loss,
                "val_loss": result.val_loss,
                "best_val_loss": result.best_val_loss,
            }
            self.save(run)
            self.timeline.emit(
                "checkpoint.saved",
                run,
                attempt=number,
                checkpoint=name,
                epoch=epoch,
                train_loss=result.train_loss,
                val_loss=result.val_loss,
            )
        for gone in pruned:  # once the rows are gone: a kill in between leaves only files
            self.files.checkpoint(run_id, gone).unlink(missing_ok=True)

    def _retain(self, run_id: str) -> tuple[list[str], int]:
        """Drops the run's checkpoints beyond ``keep_checkpoints`` (but the best and the
        deployed ones) from the store: their names, and the bytes of those kept."""
        checkpoints = self.records.checkpoints(run_id)  # by epoch
        keep = self.settings.keep_checkpoints
        pruned: list[str] = []
        if len(checkpoints) > keep:
            deployed = {d.checkpoint_name for d in self.records.deployments.all(run_id)}
            best = min(reversed(checkpoints), key=_loss).name
            for old in checkpoints[:-keep]:
                if old.name != best and old.name not in deployed:
                    self.store.delete_checkpoint(run_id, old.name)
                    pruned.append(old.name)
        kept = sum(c.size_bytes for c in checkpoints if c.name not in pruned)
        return pruned, kept

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
            run = self.records.runs.get(run_id)
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
                self.timeline.emit(f"attempt.{outcome}", ended, attempt=number, reason=reason)
                if follow is not None:
                    self.timeline.emit(
                        f"run.{follow.status}", run, **_follow_fields(follow, number)
                    )
            if follow is not None and follow.retry_at is not None:
                self._spawn_attempt(run, number + 1, follow.retry_at)


def _follow_fields(follow: Any, number: int) -> dict[str, Any]:
    if follow.status == "pending":
        return {"attempt": number + 1, "reason": follow.error}
    if follow.status == "failed":
        return {"attempt": number, "reason": follow.error}
    return {"attempt": number}


def earliest_result(job: AttemptJob) -> float:
    """The earliest simulated time the attempt's worker can report anything: a fault at its
    first epoch's start, else the end of that epoch or the attempt's deadline."""
    if any(fault.type in ("crash", "hang", "slow") for fault in job.faults):
        return job.epoch_start
    return min(job.epoch_start + job.epoch_cost, job.deadline)


def _loss(checkpoint: Checkpoint) -> float:
    """A checkpoint's loss for choosing the best; a diverged (NaN) one is never the best."""
    loss = float((checkpoint.metrics or {}).get("loss", math.inf))
    return loss if loss == loss else math.inf
