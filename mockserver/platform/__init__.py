"""The emulated platform, apart from HTTP: one module per resource, wired by ``Platform``.

    platform.identity      users, projects, keys, authentication   (identity.py)
    platform.catalog       environments, experiments                (catalog.py)
    platform.datasets      datasets                                 (datasets.py)
    platform.runs          runs and checkpoints                     (runs.py)
    platform.deployments   deployments and inferences               (deployments.py)
    platform.control       the /_emulator control plane             (control.py)
    platform.timeline      the event timeline                       (timeline.py)

Each raises ``mockserver.errors`` exceptions, never HTTP ones. ``Platform`` is the composition
root: it opens the store and the files, builds the clock, the simulation kernel, the attempt
engine and the webhook outbox, and owns ``reset()`` and ``close()``.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
from concurrent.futures import Executor
from pathlib import Path

from qcog_mock.mockserver import seeding, state
from qcog_mock.mockserver.clock import SimulatedClock
from qcog_mock.mockserver.engine.attempts import Engine
from qcog_mock.mockserver.engine.executors import LocalProcesses, make_executor
from qcog_mock.mockserver.errors import PlatformError
from qcog_mock.mockserver.faults import ServerFaults
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.platform.catalog import Catalog
from qcog_mock.mockserver.platform.control import Control
from qcog_mock.mockserver.platform.datasets import Datasets
from qcog_mock.mockserver.platform.deployments import Deployments
from qcog_mock.mockserver.platform.identity import Identity, Principal
from qcog_mock.mockserver.platform.runs import Runs
from qcog_mock.mockserver.platform.shared import Shared
from qcog_mock.mockserver.platform.timeline import Timeline
from qcog_mock.mockserver.settings import DEFAULT_API_KEY, Settings
from qcog_mock.mockserver.simulation import Simulation
from qcog_mock.mockserver.store import Store
from qcog_mock.mockserver.webhooks.outbox import Webhooks
from qcog_mock.mockserver.webhooks.signing import check_secret, check_url, new_secret

__all__ = ["DataDirInUse", "OtherStartingPoint", "Platform", "Principal"]

logger = logging.getLogger(__name__)
INITIAL_STATE = "initial-state.tar.gz"  # in the data dir: what a reset returns to


class DataDirInUse(RuntimeError):
    pass


class OtherStartingPoint(RuntimeError):
    """A data dir that holds a state, asked to start from a seed or an archive it did not
    start from: going on would mix the two, starting over would lose what it holds."""


class DataDirLock:
    """An exclusive lock on the data dir: a second server on it would run the same runs."""

    def __init__(self, root: Path) -> None:
        descriptor = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._file = open(descriptor, "a+")  # noqa: SIM115 (held open: the lock lives with it)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise DataDirInUse(
                f"another qcog-mock server uses the data dir {root}; stop it, or give this one "
                "its own --data-dir"
            ) from None

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


class Platform:
    def __init__(
        self, settings: Settings | None = None, *, executor: Executor | None = None
    ) -> None:
        """``executor``: where attempts compute, owned by the caller (a test's own pool, or a
        faulty one); by default the one ``settings.executor`` names."""
        self.settings = settings or Settings()
        # A seed file is checked whole, and an archive's version, before anything is opened.
        seed = seeding.load(self.settings.seed_file) if self.settings.seed_file else None
        origin = _origin(seed, self.settings.state_file)
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._lock: DataDirLock | None = None
        if self.settings.data_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="qcog-mock-")
            root, database = Path(self._scratch.name), ":memory:"
        else:
            root = Path(self.settings.data_dir)
            root.mkdir(parents=True, exist_ok=True)
            # The operator's alone: it holds the webhook secret and every tenant's data.
            root.chmod(0o700)
            self._lock = DataDirLock(root)  # one server per data dir
            database = str(root / "qcog-mock.sqlite3")
        self.store = Store(database)
        self.files = Files(root)
        self.initial_state = root / INITIAL_STATE
        fresh = self.store.setting("seeded") is None
        try:
            if not fresh:
                self._check_origin(origin, root)
            elif self.settings.state_file is not None:
                state.restore(self.settings.state_file, self.store, self.files)
                shutil.copyfile(self.settings.state_file, self.initial_state)  # read, not moved
            if fresh and origin is not None:
                self.store.set_setting("origin", origin)
        except BaseException:
            self._release()
            raise
        self.files.remove_orphans(self.store)
        self.executor = executor or make_executor(self.settings.executor)
        if executor is None and isinstance(self.executor, LocalProcesses):
            self.executor.warm()  # torch loads in a worker while the caller gets going
        # The local pool is shared by every platform of the process; a Dask client is ours.
        self._owns_executor = executor is None and self.settings.executor != "local"
        try:
            self._start(seed if fresh else None)
        except seeding.SeedError:  # nothing of a seed that could not be applied is kept
            self._stop()
            self.store.clear()
            self.files.clear()
            self._release()
            raise
        if not fresh:
            self.timeline.emit("platform.restarted")
        if fresh and seed is not None:
            self.save_state(self.initial_state)
        else:  # what the store held (a restart, a restored archive) has no process yet
            self.engine.recover()
            self.webhooks.recover()

    def _check_origin(self, origin: dict[str, str] | None, root: Path) -> None:
        recorded = self.store.setting("origin")
        if origin is None or (recorded or {}).get("digest") == origin["digest"]:
            return
        was = f"from the {recorded['kind']} {recorded['path']}" if recorded else "blank"
        raise OtherStartingPoint(
            f"the data dir {root} holds a server's state, started {was}, not from "
            f"{origin['path']}; remove that dir (or give another --data-dir) to start from "
            f"{origin['path']}, or start without --{origin['kind']} to go on with it"
        )

    def _start(self, seed: seeding.Seed | None = None) -> None:
        """Build the engine and the resources on the store's state (at start and after reset);
        a store not yet seeded gets the defaults, and ``seed``'s state if given."""
        s, store = self.settings, self.store
        self.clock = store.saved_clock() or SimulatedClock(s.start_time, s.clock, s.speed)
        self.sim = Simulation(self.clock)
        self.sim.on_time_change = lambda _: store.save_clock(self.clock)
        self.timeline = Timeline(store, self.clock)
        self.server_faults = ServerFaults(store)
        self.engine = Engine(
            store, self.sim, self.files, s, self.server_faults, self.timeline, self.executor
        )
        self.webhooks = Webhooks(
            store,
            self.sim,
            self.server_faults,
            self.timeline,
            secret=self._webhook_secret(),
            endpoints=self._webhook_endpoints(),
            checkpoints=s.webhook_checkpoints,
            timeout=s.webhook_timeout,
        )
        self.timeline.subscribe(self.webhooks)
        shared = Shared(s, store, self.files, self.clock)
        self.identity = Identity(shared)
        self.catalog = Catalog(shared)
        self.datasets = Datasets(shared)
        self.deployments = Deployments(shared, self.timeline, self.executor)
        self.runs = Runs(shared, self.identity, self.engine, self.timeline, self.deployments)
        self.control = Control(s, store, self.clock, self.sim, self.server_faults, self.webhooks)
        if store.setting("seeded") is None:
            first = seed.spec.projects[0] if seed is not None and seed.spec.projects else None
            self.identity.seed(*((first.name, first.description) if first else ()))
            self.catalog.seed()
            if seed is not None:
                seeding.apply(self, seed)
            store.set_setting("seeded", True)
        self.identity.hash_stored_keys()
        self.identity.ensure_key(s.api_key)
        # Beyond loopback, the well-known key a data dir may keep from an earlier serve with
        # the defaults is revoked (the configured key, if it is that one, was refused earlier).
        self.revoked_keys = (
            [DEFAULT_API_KEY]
            if s.exposed
            and s.api_key != DEFAULT_API_KEY
            and self.identity.revoke_key(DEFAULT_API_KEY)
            else []
        )

    def _webhook_secret(self) -> str:
        secret = (
            self.settings.webhook_secret or self.store.setting("webhook_secret") or new_secret()
        )
        self.store.set_setting("webhook_secret", check_secret(secret))
        return secret

    def _webhook_endpoints(self) -> list[str]:
        endpoints = []
        for url in self.store.setting("webhook_endpoints") or []:
            # Kept from an earlier run: checked again under this server's settings.
            try:
                endpoints.append(check_url(url, allow_remote=self.settings.allow_remote_webhooks))
            except PlatformError:
                logger.warning("Dropped the stored webhook endpoint %s: it is not on loopback", url)
        for url in self.settings.webhook_urls:
            check_url(url, allow_remote=self.settings.allow_remote_webhooks, field="--webhook-url")
            if url not in endpoints:
                endpoints.append(url)
        self.store.set_setting("webhook_endpoints", endpoints)
        return endpoints

    def _stop(self) -> None:
        self.sim.close()
        self.engine.close()
        self.webhooks.close()

    def close(self) -> None:
        # In this order: the attempts stop their workers and end (joined), and only then do the
        # files they write go. The shared local pool stays warm.
        self._stop()
        if self._owns_executor:
            self.executor.shutdown(wait=False)
        self._release()

    def _release(self) -> None:
        self.store.close()
        if self._lock is not None:
            self._lock.release()
        if self._scratch is not None:
            self._scratch.cleanup()

    def reset(self) -> None:
        """Back to where this emulator started: the seed file's or the archive's state if it
        started from one, else the defaults. Every resource, file, event and the clock."""
        self._stop()
        if self.initial_state.is_file():
            origin = self.store.setting("origin")  # the data dir's, not the archive's
            state.restore(self.initial_state, self.store, self.files)
            self.store.set_setting("origin", origin)
            self._start()
            self.engine.recover()  # runs in flight at the start go on, as after a restart
            self.webhooks.recover()
        else:
            self.store.clear()
            self.files.clear()
            self._start()

    def save_state(self, destination: Path) -> dict[str, object]:
        """The whole state in one archive (``state.py``); returns its manifest."""
        return state.save(self.store, self.files, self.clock, destination)


def _origin(seed: seeding.Seed | None, archive: Path | None) -> dict[str, str] | None:
    """What a new emulator starts from, as its data dir records it."""
    if seed is not None:
        return {"kind": "seed", "path": str(seed.path), "digest": seed.digest}
    if archive is not None:
        state.manifest(archive)  # refused here, before anything is opened, if unreadable
        digest = hashlib.sha256(Path(archive).read_bytes()).hexdigest()
        return {"kind": "state", "path": str(archive), "digest": digest}
    return None
