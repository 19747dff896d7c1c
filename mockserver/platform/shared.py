"""What every resource module of the platform is given, and the rules they share: ids, names,
paging and lookups by id or name."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qcog_mock.mockserver import s3
from qcog_mock.mockserver.clock import SimulatedClock, isoformat
from qcog_mock.mockserver.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from qcog_mock.mockserver.files import Files
from qcog_mock.mockserver.records import Collection, D, Records
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.store import NameTaken, Store

_ID_NAMESPACE = uuid.UUID("5d3f2c9e-7a51-4c47-9a0e-1c2b3d4e5f60")
MAX_NAME_LENGTH = 200


@dataclass
class Shared:
    """The store (and its typed collections), the files, the clock and the settings, with
    seeded ids."""

    settings: Settings
    store: Store
    files: Files
    clock: SimulatedClock
    lock: threading.RLock = field(default_factory=threading.RLock)
    records: Records = field(init=False)

    def __post_init__(self) -> None:
        self.records = Records(self.store)

    def new_id(self) -> str:
        # Seeded, counted ids: the same submissions give the same ids on every machine.
        with self.lock:
            counter = int(self.store.setting("id_counter") or 0) + 1
            self.store.set_setting("id_counter", counter)
        return str(uuid.uuid5(_ID_NAMESPACE, f"{self.settings.seed}:{counter}"))

    def now(self) -> str:
        return isoformat(self.clock.now())

    def insert(self, collection: Collection[D], document: D, conflict: str) -> None:
        """Stores a new named document, or raises ``Conflict(conflict)`` if the name is taken
        (checked by the database in the write itself, so racing creations cannot both win)."""
        try:
            collection.insert(document)
        except NameTaken:
            raise Conflict(conflict) from None

    def lookup(
        self, collection: Collection[D], label: str, value: str, identifier: str, scope: str = ""
    ) -> D:
        """A document by ``identifier`` (``id`` or ``name``), within ``scope`` if given."""
        if identifier not in ("id", "name"):
            raise Invalid("identifier: must be 'id' or 'name'.")
        if identifier == "name":
            found = collection.find(value, scope)
        else:
            found = collection.get(value, scope)
        if found is None:
            raise NotFound(label, value, by=identifier)
        return found

    def local_file(self, location: str, field: str) -> Path:
        """A file of the host that a caller may name: inside a folder the operator allowed, or
        an ``s3://`` object under ``--s3-root``.

        The refusal is the same whether or not the file exists, and no message shows more of
        the host than the caller wrote.
        """
        if s3.is_s3(location):
            if self.settings.s3_root is None:
                s3.parse(location, field)
                raise BadRequest(f"{field}: {s3.NO_ACCESS}.")
            return s3.local_object(self.settings.s3_root, location, field)
        hint = (
            "upload the file instead (ProjectClient.upload_dataset), or have the server started "
            "with qcog-mock serve --dataset-root DIR"
        )
        roots = [root.resolve() for root in self.settings.dataset_roots]
        if not roots:
            raise Forbidden(f"{field}: this server reads no local paths; {hint}.")
        path = Path(location.removeprefix("file://"))
        resolved = (path if path.is_absolute() else roots[0] / path).resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            raise Forbidden(f"{field}: '{location}' is outside the folders this server allows.")
        if not resolved.is_file():
            raise NotFound("Dataset file", location, by="location")
        return resolved

    def replaceable(
        self, collection: Collection[D], label: str, scope: str, name: str, override: bool
    ) -> D | None:
        """The same-named document that ``override`` may replace; a conflict without it."""
        existing = collection.find(name, scope)
        if existing is not None and not override:
            raise Conflict(taken(label, name))
        return existing


def taken(label: str, name: str) -> str:
    return (
        f"{label} '{name}' already exists in this project; pass override=True to replace it, "
        "or choose another name."
    )


def read_text(path: Path, field: str) -> str:
    """A CSV file's text; ``Invalid`` if it is not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise Invalid(f"{field}: the file is not UTF-8 text; save the CSV as UTF-8.") from None


def check_name(field: str, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid(f"{field}: a non-empty name is required.")
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid(f"{field}: at most {MAX_NAME_LENGTH} characters.")
    if any(ord(c) < 32 for c in name):
        raise Invalid(f"{field}: control characters are not allowed in names.")
    return name


def check_page(limit: int, skip: int) -> None:
    if limit < 0 or skip < 0:
        raise Invalid("limit and skip (offset) must be 0 or more.")


def page(items: list[Any], limit: int, skip: int) -> list[Any]:
    check_page(limit, skip)
    return items[skip : skip + limit]
