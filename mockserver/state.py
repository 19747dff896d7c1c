"""State snapshots: a whole emulator in one portable archive, and back.

An archive (``.tar.gz``) holds::

    manifest.json          {"format": "qcog-mock state", "format_version": 1, …}
    qcog-mock.sqlite3      every resource, the timeline, the outbox, the clock, the webhook secret
    datasets/<id>.csv      the data of every dataset, and of every run's dataset
    checkpoints/<run>/<name>.pt   every checkpoint the database records

It is written from one consistent moment: the database is copied and the files it names are read
while the store's lock is held, so no commit lands in between (every file is written before the
row naming it, and removed after). Runs in flight are restored as a restart finds them: their
attempts go on from their last checkpoint, on the same timeline. Reading an archive never trusts
it: only those names, as regular files, are taken out.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qcog_mock import __version__
from qcog_mock.mockserver.clock import SimulatedClock, isoformat, wall_time
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.store import Store

FORMAT = "qcog-mock state"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "qcog-mock.sqlite3"
_MEMBER = re.compile(  # no name may start with a dot: nothing leaves the data dir
    r"manifest\.json|qcog-mock\.sqlite3|datasets/\w[\w.-]*|checkpoints/[\w-]+/\w[\w.-]*\.pt"
)


class StateError(Exception):
    """An archive that cannot be read: its message names the file and the fix."""


def save(store: Store, files: Files, clock: SimulatedClock, destination: Path) -> dict[str, Any]:
    """Write the emulator's state to ``destination`` (replaced whole, never half-written);
    returns the manifest."""
    destination = Path(destination)
    partial = destination.with_name(f".{destination.name}.partial")
    # Beside the files, so that they are linked, not copied: the lock is held only while the
    # database is copied and the files it names are linked; compressing comes after.
    with tempfile.TemporaryDirectory(prefix=".state-", dir=files.root) as scratch:
        frozen = Path(scratch)
        copy = frozen / DATABASE
        with store.lock:  # one moment: no commit between the copy and the files it names
            store.copy_to(copy)
            now = clock.now()
            with _connected(copy) as db:  # the clock as it reads now (realtime moves on)
                value = json.dumps({"now": now, "mode": clock.mode, "speed": clock.speed})
                db.execute(
                    "INSERT OR REPLACE INTO settings (key, value) VALUES ('clock', ?)", (value,)
                )
                db.commit()
            named = [
                _freeze(path, frozen / files.relative(path)) for path in _files_named(copy, files)
            ]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "qcog_mock_version": __version__,
            "saved_at": isoformat(wall_time()),
            "clock": isoformat(now),
            "clock_mode": clock.mode,
        }
        # Key digests and the webhook secret: the owner's alone, as the data dir is.
        partial.unlink(missing_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with (
                os.fdopen(descriptor, "wb") as out,
                tarfile.open(fileobj=out, mode="w:gz") as archive,
            ):
                _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=2).encode())
                archive.add(copy, DATABASE)
                for path in filter(None, named):
                    archive.add(path, path.relative_to(frozen).as_posix())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.replace(destination)
    return manifest


def _freeze(source: Path, target: Path) -> Path | None:
    """``source`` as it is now, at ``target`` (a hard link; a copy across file systems); None
    if there is no such file (a dataset stored as a reference has none)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except FileNotFoundError:
        return None
    except OSError:
        try:
            shutil.copyfile(source, target)
        except FileNotFoundError:
            return None
    return target


def _files_named(database: Path, files: Files) -> list[Path]:
    """The dataset and checkpoint files the database refers to, in a stable order."""
    with _connected(database) as db:
        datasets = {
            row[0]
            for row in db.execute(
                "SELECT id FROM resources WHERE kind = 'dataset' UNION "
                "SELECT json_extract(body, '$.dataset_id') FROM resources WHERE kind = 'run'"
            )
            if row[0]
        }
        checkpoints = db.execute("SELECT run_id, name FROM checkpoints ORDER BY run_id, epoch")
        named = [files.checkpoint(run_id, name) for run_id, name in checkpoints]
    for dataset_id in sorted(datasets):
        named += [files.dataset(dataset_id), files.credentials(dataset_id)]
    return named


@contextmanager
def _connected(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(path)
    try:
        yield db
    finally:
        db.close()


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mode = 0o600
    archive.addfile(info, io.BytesIO(content))


def manifest(source: Path) -> dict[str, Any]:
    """The archive's manifest; ``StateError`` if it is not an archive this version reads."""
    with _open(source) as archive:
        return _manifest(archive, source)


def _open(source: Path) -> tarfile.TarFile:
    if not Path(source).is_file():
        raise StateError(
            f"{source}: no such file; give the path of a saved state (qcog-mock state save FILE)."
        )
    try:
        return tarfile.open(source, "r:gz")
    except (tarfile.TarError, OSError, EOFError):
        raise StateError(
            f"{source}: not a qcog-mock state archive (a .tar.gz written by qcog-mock state save)."
        ) from None


def _manifest(archive: tarfile.TarFile, source: Path) -> dict[str, Any]:
    try:
        member = archive.extractfile(MANIFEST)
        found = json.loads(member.read()) if member else None
    except (KeyError, ValueError, tarfile.TarError, OSError, EOFError):
        found = None
    if not isinstance(found, dict) or found.get("format") != FORMAT:
        raise StateError(
            f"{source}: not a qcog-mock state archive (it has no qcog-mock manifest); save one "
            "with qcog-mock state save FILE."
        )
    version = found.get("format_version")
    if version != FORMAT_VERSION:
        raise StateError(
            f"{source}: a state archive of format version {version} (written by qcog-mock "
            f"{found.get('qcog_mock_version', 'unknown')}); this qcog-mock ({__version__}) reads "
            f"format version {FORMAT_VERSION} only. Save the state again with this version, or "
            "start it with the qcog-mock that wrote it."
        )
    return found


def restore(source: Path, store: Store, files: Files) -> dict[str, Any]:
    """Replace the store's content and the files with the archive's (the archive is only
    read). Returns its manifest; ``StateError`` (nothing changed) if it cannot be read."""
    with tempfile.TemporaryDirectory(prefix="qcog-mock-state-") as scratch:
        unpacked = Path(scratch)
        found = _unpack(Path(source), unpacked)
        store.replace_with(unpacked / DATABASE)
        files.clear()
        for folder in ("datasets", "checkpoints"):
            for path in sorted((unpacked / folder).glob("**/*")):
                if path.is_file():
                    target = files.root / path.relative_to(unpacked)
                    target.parent.mkdir(mode=0o700, exist_ok=True)
                    path.replace(target)
    return found


def _unpack(source: Path, into: Path) -> dict[str, Any]:
    with _open(source) as archive:
        found = _manifest(archive, source)
        try:
            members = archive.getmembers()
            for member in members:
                if not (member.isfile() and _MEMBER.fullmatch(member.name)):
                    continue  # nothing but the names above, as regular files
                target = into / member.name
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file
                with stream, target.open("wb") as out:
                    while chunk := stream.read(1 << 20):
                        out.write(chunk)
                target.chmod(0o600)
        except (tarfile.TarError, OSError, EOFError) as error:
            raise StateError(
                f"{source}: the archive is damaged ({error}); save it again."
            ) from None
    if not (into / DATABASE).is_file():
        raise StateError(f"{source}: the archive holds no database; save it again.")
    try:
        with _connected(into / DATABASE) as db:
            db.execute("SELECT COUNT(*) FROM resources").fetchone()
    except sqlite3.DatabaseError:
        raise StateError(f"{source}: the archive's database is damaged; save it again.") from None
    return found
