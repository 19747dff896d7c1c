"""SQLite persistence: resources as JSON documents, checkpoints, the event timeline, settings.

One file under the data directory (``qcog-mock.sqlite3``), or ``:memory:`` for tests; dataset and
checkpoint files live beside it. Every write is its own transaction, so a server killed at any
moment restarts from a consistent state; what must land together (a run and its first events,
an event and its deliveries) is written in one ``transaction()``. One connection shared by
threads, behind a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qcog_mock.mockserver.clock import SimulatedClock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS resources_by_name ON resources (kind, scope, name);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss REAL NOT NULL,
    val_loss REAL NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    type TEXT NOT NULL,
    run_id TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL,
    run_id TEXT,
    body TEXT NOT NULL
);
"""


class NameTaken(Exception):
    """Another document of the kind already has this name in this scope."""

    def __init__(self, kind: str, scope: str, name: str) -> None:
        super().__init__(f"a {kind} named {name!r} already exists in scope {scope!r}")
        self.kind, self.scope, self.name = kind, scope, name


def _dump(doc: Any) -> str:
    # Not ASCII-escaped: text that cannot be encoded as UTF-8 (a lone surrogate) fails here,
    # before anything is stored, instead of being stored and failing every later read.
    return json.dumps(doc, ensure_ascii=False)


def _real(value: float) -> float | str:
    # SQLite stores a NaN as NULL; a diverged epoch's loss is kept as the text 'NaN' instead
    # (float() reads it back), so the columns stay NOT NULL in existing data dirs too.
    return "NaN" if value != value else value


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() in the thread holding the lock
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if self.path != ":memory:":
            Path(self.path).chmod(0o600)  # keys' digests and the webhook secret
            # Deleted and replaced rows are zeroed, not left in free pages: a key stored in
            # clear by an earlier version is gone once it is rewritten as a digest.
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; a transaction opened inside another (same thread) joins it."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0
            self._db.execute("COMMIT")

    def checkpoint(self) -> None:
        """Moves the journal's pages into the database file and empties the journal: what was
        overwritten (with ``secure_delete``) is then gone from both."""
        with self._lock:
            if self.path != ":memory:":
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def lock(self) -> threading.RLock:
        """Held, no other thread reads or writes the store (a snapshot's one moment)."""
        return self._lock

    def copy_to(self, path: Path) -> None:
        """A consistent copy of the whole database into a new file."""
        with self._lock:
            copy = sqlite3.connect(path)
            try:
                self._db.backup(copy)
            finally:
                copy.close()

    def replace_with(self, path: Path) -> None:
        """This database's whole content replaced by that of the database file at ``path``."""
        with self._lock:
            source = sqlite3.connect(path)
            try:
                source.backup(self._db)
            finally:
                source.close()
            self._db.executescript(_SCHEMA)  # an archive of an older layout gains what is new

    def clear(self) -> None:
        with self.transaction() as db:
            for table in ("resources", "checkpoints", "epochs", "events", "settings", "deliveries"):
                db.execute(f"DELETE FROM {table}")  # fixed table names

    # Resources ------------------------------------------------------------------------------

    def insert(self, kind: str, doc: dict[str, Any], scope: str = "") -> None:
        """A new document; ``NameTaken`` if ``(kind, scope, name)`` is in use. Never replaces
        anything: two creations racing for a name cannot both be acknowledged."""
        with self.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO resources (kind, id, scope, name, position, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, doc["id"], scope, doc["name"], self._next_position(db), _dump(doc)),
                )
            except sqlite3.IntegrityError:
                raise NameTaken(kind, scope, doc["name"]) from None

    def put(self, kind: str, doc: dict[str, Any], scope: str = "") -> None:
        """Create or update the document with this id; ``NameTaken`` if its name is another
        document's (never replaced: an ``INSERT OR REPLACE`` would delete the other)."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT position FROM resources WHERE kind = ? AND id = ?", (kind, doc["id"])
            ).fetchone()
            position = row["position"] if row else self._next_position(db)
            try:
                db.execute(
                    "INSERT INTO resources (kind, id, scope, name, position, body) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET "
                    "scope = excluded.scope, name = excluded.name, body = excluded.body",
                    (kind, doc["id"], scope, doc["name"], position, _dump(doc)),
                )
            except sqlite3.IntegrityError:
                raise NameTaken(kind, scope, doc["name"]) from None

    @staticmethod
    def _next_position(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT COALESCE(MAX(position), 0) + 1 FROM resources").fetchone()
        return int(row[0])

    def get(self, kind: str, id_: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM resources WHERE kind = ? AND id = ?", (kind, id_)
            ).fetchone()
        return json.loads(row["body"]) if row else None

    def find(self, kind: str, name: str, scope: str = "") -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM resources WHERE kind = ? AND scope = ? AND name = ?",
                (kind, scope, name),
            ).fetchone()
        return json.loads(row["body"]) if row else None

    def documents(
        self,
        kind: str,
        scope: str | None = None,
        *,
        where: tuple[str, Any] | None = None,
        limit: int = -1,
        offset: int = 0,
        descending: bool = False,
    ) -> list[dict[str, Any]]:
        """Documents in creation order (or the newest first), a page of them: the database
        skips the rest, so a page of 10,000 runs costs what the page holds. ``where``: a
        top-level field of the document and the value it must have."""
        query = "SELECT body FROM resources WHERE kind = ?"
        args: list[Any] = [kind]
        if scope is not None:
            query += " AND scope = ?"
            args.append(scope)
        if where is not None:
            query += " AND json_extract(body, ?) = ?"
            args += [f"$.{where[0]}", where[1]]
        order = "DESC" if descending else "ASC"
        query += f" ORDER BY position {order} LIMIT ? OFFSET ?"  # order: one of two words
        with self._lock:
            rows = self._db.execute(query, (*args, limit, offset)).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def count(self, kind: str, scope: str | None = None) -> int:
        query, args = "SELECT COUNT(*) FROM resources WHERE kind = ?", [kind]
        if scope is not None:
            query += " AND scope = ?"
            args.append(scope)
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def delete(self, kind: str, id_: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM resources WHERE kind = ? AND id = ?", (kind, id_))

    # Checkpoints ----------------------------------------------------------------------------

    def put_checkpoint(self, run_id: str, doc: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, name, epoch, body) "
                "VALUES (?, ?, ?, ?)",
                (run_id, doc["name"], doc["epoch"], _dump(doc)),
            )

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM checkpoints WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [json.loads(r["body"]) for r in rows]

    def delete_checkpoint(self, run_id: str, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE run_id = ? AND name = ?", (run_id, name))

    def delete_checkpoints(self, run_id: str) -> None:
        """A run's checkpoints and loss history."""
        with self.transaction() as db:
            db.execute("DELETE FROM checkpoints WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))

    # Loss history: one row per epoch, so that an epoch's writes do not grow with the run ------

    def add_epoch(self, run_id: str, epoch: int, train_loss: float, val_loss: float) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, val_loss) "
                "VALUES (?, ?, ?, ?)",
                (run_id, epoch, _real(train_loss), _real(val_loss)),
            )

    def loss_history(
        self, run_id: str, up_to: int | None = None
    ) -> tuple[list[float], list[float]]:
        """Training and validation losses of epochs 1…``up_to`` (all when None)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT train_loss, val_loss FROM epochs WHERE run_id = ? AND epoch <= ? "
                "ORDER BY epoch",
                (run_id, up_to if up_to is not None else 2**62),
            ).fetchall()
        return [float(r["train_loss"]) for r in rows], [float(r["val_loss"]) for r in rows]

    # Events ---------------------------------------------------------------------------------

    def add_event(self, time: float, type_: str, run_id: str | None, body: dict[str, Any]) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO events (time, type, run_id, body) VALUES (?, ?, ?, ?)",
                (time, type_, run_id, _dump(body)),
            )
            return int(cursor.lastrowid or 0)

    def events(
        self, run_id: str | None = None, after: int = 0, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        query = "SELECT seq, body FROM events WHERE seq > ?"
        args: list[Any] = [after]
        if run_id is not None:
            query += " AND run_id = ?"
            args.append(run_id)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [{"seq": r["seq"], **json.loads(r["body"])} for r in rows]

    # Webhook deliveries (the outbox) ----------------------------------------------------------

    def add_delivery(self, doc: dict[str, Any]) -> dict[str, Any]:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO deliveries (status, run_id, body) VALUES (?, ?, ?)",
                (doc["status"], doc.get("run_id"), "{}"),
            )
            doc = {**doc, "id": int(cursor.lastrowid or 0)}
            db.execute("UPDATE deliveries SET body = ? WHERE id = ?", (_dump(doc), doc["id"]))
        return doc

    def put_delivery(self, doc: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE deliveries SET status = ?, body = ? WHERE id = ?",
                (doc["status"], _dump(doc), doc["id"]),
            )

    def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
        return json.loads(row["body"]) if row else None

    def deliveries(
        self, status: str | None = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        query, args = "SELECT body FROM deliveries WHERE 1 = 1", []
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        if run_id is not None:
            query += " AND run_id = ?"
            args.append(run_id)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [json.loads(r["body"]) for r in rows]

    # Settings -------------------------------------------------------------------------------

    def setting(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)",
                (key, _dump(value)),
            )

    # The simulated clock, kept across restarts ----------------------------------------------

    def save_clock(self, clock: SimulatedClock) -> None:
        self.set_setting("clock", {"now": clock.now(), "mode": clock.mode, "speed": clock.speed})

    def saved_clock(self) -> SimulatedClock | None:
        saved = self.setting("clock")
        return SimulatedClock(saved["now"], saved["mode"], saved["speed"]) if saved else None
