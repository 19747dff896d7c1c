"""Where attempts compute: a ``concurrent.futures.Executor`` seam.

- ``LocalProcesses`` (the default): a pool of worker processes, each started once (torch
  imported once, the first while its platform starts: ``warm``) and reused attempt after
  attempt; ``kill`` ends one at once and the pool starts another when needed. A worker reads its
  jobs from a pipe and exits when the pipe closes, so workers end with the server, a SIGKILL
  included. One pool serves every platform of a process.
- ``DaskExecutor("dask://HOST:PORT")``: a Dask cluster's executor, for those who outgrow one
  machine (the optional ``dask`` extra). Its workers must share the data dir: checkpoints,
  datasets and results travel through it.

Workers report through files (``protocol.Results``), so an executor only has to run a function and
say when it has ended.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, BinaryIO

_PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!Q")


class WorkerDied(RuntimeError):
    pass


@dataclass(frozen=True)
class _Done:
    """A worker's answer: its job returned ``value``."""

    value: Any


@dataclass(frozen=True)
class _Failed:
    """A worker's answer: its job raised (the error, as text: the class may not unpickle)."""

    message: str


def describe_exit(code: int | None) -> str:
    if code is None:
        return "did not end"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _send(stream: BinaryIO, value: Any) -> None:
    data = pickle.dumps(value)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))


class _Worker:
    """One worker process and whether the pool has killed it."""

    def __init__(self) -> None:
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qcog_mock.mockserver.engine.executors", str(write)],
            stdin=subprocess.PIPE,
            pass_fds=(write,),
        )
        os.close(write)
        self.results = os.fdopen(read, "rb")
        self.killed = False  # set under the pool's lock: a killed worker is never reused

    @property
    def alive(self) -> bool:
        return not self.killed and self.process.poll() is None

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Hand the worker a job; ``OSError`` (a broken pipe) if it has died."""
        assert self.process.stdin is not None
        _send(self.process.stdin, (fn, args))  # type: ignore[arg-type]

    def outcome(self) -> _Done | _Failed | WorkerDied:
        """The running job's outcome; ``WorkerDied`` if the process ended first."""
        try:
            answer = _receive(self.results)
        except (EOFError, OSError, pickle.UnpicklingError):
            return WorkerDied(f"the worker process {describe_exit(self.process.wait())}")
        assert isinstance(answer, _Done | _Failed), answer
        return answer

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    def close(self) -> None:
        self.kill()
        self.process.wait()
        with contextlib.suppress(OSError):
            self.results.close()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


class LocalProcesses(Executor):
    """A pool of reusable worker processes; ``kill(future)`` ends a running job at once.

    A worker is reused only if it is alive and was not killed: a kill that lands as its job
    ends discards it (the job's result still counts), and a worker found dead when a job is
    handed to it is replaced.
    """

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._busy: dict[Future[Any], _Worker] = {}
        self._lock = threading.Lock()
        self._shutdown = False
        self._warming = False
        # Workers are started by one thread that lives as long as the pool: Linux sends
        # PDEATHSIG when the *thread* that started a process ends, not only the process.
        self._requests: queue.Queue[Future[_Worker]] = queue.Queue()
        threading.Thread(target=self._spawner, name="qcog-mock workers", daemon=True).start()

    def _spawner(self) -> None:
        while True:
            request = self._requests.get()
            try:
                request.set_result(_Worker())
            except Exception as error:
                request.set_exception(error)

    def _new_worker(self) -> _Worker:
        request: Future[_Worker] = Future()
        self._requests.put(request)
        return request.result()

    def warm(self) -> None:
        """Start a worker in the background unless one is idle or already starting, so that
        torch is imported while the caller does other things (a test uploading its data), not
        when its first attempt is handed over."""
        with self._lock:
            if self._shutdown or self._idle or self._busy or self._warming:
                return
            self._warming = True
        request: Future[_Worker] = Future()
        request.add_done_callback(self._warmed)
        self._requests.put(request)

    def _warmed(self, request: Future[_Worker]) -> None:
        if request.exception() is not None:  # the next job starts one, and says why it cannot
            with self._lock:
                self._warming = False
            return
        worker = request.result()
        with self._lock:
            self._warming = False
            keep = not self._shutdown
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.close()

    def _idle_worker(self) -> _Worker | None:
        """A live idle worker, if any; dead ones found on the way are closed."""
        while True:
            with self._lock:
                if self._shutdown:
                    raise RuntimeError("the executor has shut down")
                worker = self._idle.pop() if self._idle else None
            if worker is None or worker.alive:
                return worker
            worker.close()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("LocalProcesses.submit takes positional arguments only")
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        worker = self._idle_worker() or self._new_worker()
        try:
            worker.run(fn, args)
        except OSError:  # it died since it was checked: once more, on a new worker
            worker.close()
            worker = self._new_worker()
            try:
                worker.run(fn, args)
            except OSError as error:
                worker.close()
                raise WorkerDied(f"a new worker process died at once: {error}") from None
        with self._lock:
            self._busy[future] = worker
        threading.Thread(target=self._watch, args=(future, worker), daemon=True).start()
        return future

    def _watch(self, future: Future[Any], worker: _Worker) -> None:
        outcome = worker.outcome()
        with self._lock:
            self._busy.pop(future, None)
            reuse = worker.alive and not self._shutdown and not isinstance(outcome, WorkerDied)
            if reuse:
                self._idle.append(worker)
        if not reuse:
            worker.close()
            # Its replacement imports torch now, not when the next job (a reset's, the next
            # test's) is handed over: a kill at a platform's close costs the next one nothing.
            self.warm()
        if isinstance(outcome, WorkerDied):
            future.set_exception(outcome)
        elif isinstance(outcome, _Failed):
            future.set_exception(RuntimeError(outcome.message))
        else:
            future.set_result(outcome.value)

    def kill(self, future: Future[Any]) -> None:
        """End the job's worker at once; nothing for a job that has ended."""
        with self._lock:
            worker = self._busy.get(future)
            if worker is not None:
                worker.killed = True
                worker.kill()

    def busy_pids(self) -> list[int]:
        """The process ids of the workers running a job."""
        with self._lock:
            return [worker.process.pid for worker in self._busy.values()]

    def idle_pids(self) -> list[int]:
        """The process ids of the warm workers waiting for a job."""
        with self._lock:
            return [worker.process.pid for worker in self._idle]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            workers = [*self._idle, *self._busy.values()]
            self._idle.clear()
        for worker in workers:
            worker.close()


_shared: LocalProcesses | None = None
_shared_lock = threading.Lock()


def local_processes() -> LocalProcesses:
    """The process's one pool: every platform of a test session reuses its warm workers."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LocalProcesses()
            atexit.register(_shared.shutdown)
        return _shared


class DaskExecutor(Executor):
    """The executor of the Dask scheduler at ``dask://HOST:PORT``; shutting it down closes the
    connection to the cluster."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise SystemExit(
                "--executor dask://… needs Dask: pip install 'qcog-mock[dask]'"
            ) from None
        self._client = Client(address.replace("dask://", "tcp://", 1))
        self._executor = self._client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        return self._executor.submit(fn, *args, **kwargs)

    def kill(self, future: Future[Any]) -> None:
        """Cancels the task on the cluster (its wrapper passes the cancel on). A task already
        computing finishes its epoch; it then finds its folder gone and ends."""
        future.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._executor.shutdown(wait=wait)
        self._client.close()


def make_executor(spec: str) -> Executor:
    if spec == "local":
        return local_processes()
    if spec.startswith("dask://"):
        return DaskExecutor(spec)
    raise ValueError(f"--executor: '{spec}' is neither 'local' nor dask://HOST:PORT")


def serve_jobs(results_fd: int) -> None:
    """A worker's main: run jobs from stdin until it closes (the server has gone)."""
    # Not on Linux: no prctl; the closed pipe still ends the worker.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # Everything an attempt imports, once, before the first job: torch, the dynamo package the
    # first optimizer imports (as long again as torch), the trainer and its data stack. Without
    # them, every job fails saying so (a worker that just exited would say only its status).
    cannot_train = None
    try:
        import torch
        import torch._dynamo  # noqa: F401

        from qcog_mock.mockserver.engine import worker  # noqa: F401
        from qcog_mock.trainer import experiment  # noqa: F401
    except ImportError as error:
        cannot_train = _Failed(
            f"the worker's Python ({sys.executable}) cannot import what training needs "
            f"({error}); install torch into it: pip install 'torch>=2.3,<2.14'"
        )

    # Training yields to the server's request handling; starting up does not (at nice 10 beside
    # busy processes, these imports took ten times as long, and the attempt waits for them).
    os.nice(10)

    jobs, results = sys.stdin.buffer, os.fdopen(results_fd, "wb")
    while True:
        try:
            fn, args = _receive(jobs)
        except (EOFError, OSError):  # the server has gone, or closed our pipe
            return
        if cannot_train is not None:
            _send(results, cannot_train)
            continue
        try:
            answer: _Done | _Failed = _Done(fn(*args))
        except Exception as error:
            answer = _Failed(f"{type(error).__name__}: {error}")
        _send(results, answer)


if __name__ == "__main__":
    # The module by its own name, not as __main__: its answers must unpickle in the server.
    from qcog_mock.mockserver.engine.executors import serve_jobs as main

    main(int(sys.argv[1]))
