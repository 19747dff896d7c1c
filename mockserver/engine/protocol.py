"""What an attempt's worker and the engine say to each other, and the files they say it through.

The worker reports, in order, ``FaultInjected``, ``EpochDone`` and finally ``AttemptEnded`` —
each a numbered JSON file in the attempt's folder (``Results``), written whole. The engine commits
each at its simulated time, then consumes it (removes the file). The engine asks two things back,
each a marker file: ``stop`` (the attempt is no longer wanted) and ``unbounded`` (compute ahead
without the lookahead bound). Plain files, so a worker on another machine (Dask) speaks it too.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from qcog_mock.mockserver.clock import pause
from qcog_mock.mockserver.faults import Fault

# How many results a worker may have written that the engine has not yet committed. Each result
# is at most one epoch, so at most this many checkpoint files lie ahead of the clock. 8 keeps a
# worker busy while its committer waits its turn among a few runs with other epoch costs (the
# parallel benchmark's 2.2x holds), and bounds the disk a run that nobody advances can fill.
LOOKAHEAD = 8
WAIT_SECONDS = 0.002  # how often a worker at the bound looks whether it may go on


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FaultInjected(_Message):
    """A fault of the plan took effect at the start of ``epoch``."""

    kind: Literal["fault"] = "fault"
    at: float
    epoch: int
    fault: Fault


class EpochDone(_Message):
    """An epoch ended at ``at``; its checkpoint file (``path``, data-dir relative) is written."""

    kind: Literal["epoch"] = "epoch"
    at: float
    epoch: int
    name: str
    path: str
    metrics: dict[str, Any]
    train_loss: float
    val_loss: float
    best_val_loss: float


Ending = Literal["completed", "timed_out", "crashed"]


class AttemptEnded(_Message):
    """The attempt's last word: how it ended, and when."""

    kind: Literal["end"] = "end"
    at: float
    outcome: Ending
    reached_epoch: int = 0
    reason: str | None = None
    retryable: bool = True
    metrics: dict[str, Any] | None = None  # the run's final metrics, when completed


WorkerResult = Annotated[FaultInjected | EpochDone | AttemptEnded, Field(discriminator="kind")]
_RESULT: pydantic.TypeAdapter[WorkerResult] = pydantic.TypeAdapter(WorkerResult)


class UnreadableResult(Exception):
    """A result file exists but is not a result (torn, edited, or from another version)."""


class Results:
    """The numbered result files of one attempt (written whole: temporary name, then rename)."""

    STOP = "stop"
    UNBOUNDED = "unbounded"

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, index: int) -> Path:
        return self.folder / f"{index:06d}.json"

    # The worker's side --------------------------------------------------------------------

    def write(self, index: int, result: WorkerResult) -> None:
        final = self._path(index)
        partial = final.with_suffix(".partial")
        # json, not pydantic's JSON: a diverging run's NaN losses must come back as NaN.
        partial.write_text(json.dumps(result.model_dump(mode="python")))
        os.replace(partial, final)

    def stop_requested(self) -> bool:
        return (self.folder / self.STOP).exists()

    def wait_for_room(self, written: int, bound: int = LOOKAHEAD) -> None:
        """Return once fewer than ``bound`` of the ``written`` results are uncommitted, the bound
        is lifted, or a stop is requested (the caller checks which)."""
        oldest = written - bound + 1  # must be consumed before another result is computed
        while oldest >= 1 and self._path(oldest).exists():
            if self.stop_requested() or (self.folder / self.UNBOUNDED).exists():
                return
            pause(WAIT_SECONDS)

    # The engine's side --------------------------------------------------------------------

    def read(self, index: int) -> WorkerResult | None:
        """Result ``index``, or None if it is not written yet; ``UnreadableResult`` if it is
        there but is not a result."""
        try:
            text = self._path(index).read_text()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UnreadableResult(f"result {index} could not be read: {error}") from None
        try:
            return _RESULT.validate_python(json.loads(text))
        except (ValueError, pydantic.ValidationError) as error:
            problem = str(error).splitlines()[0]
            raise UnreadableResult(f"result {index} is not a worker result: {problem}") from None

    def consume(self, index: int) -> None:
        """Result ``index`` is committed: its file goes, which gives the worker room."""
        with contextlib.suppress(FileNotFoundError):
            self._path(index).unlink()

    def _mark(self, name: str) -> None:
        # The folder may be gone already (a run deleted, a platform closed): nothing to tell.
        with contextlib.suppress(FileNotFoundError):
            (self.folder / name).touch()

    def request_stop(self) -> None:
        self._mark(self.STOP)

    def lift_bound(self) -> None:
        self._mark(self.UNBOUNDED)
