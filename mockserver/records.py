"""Typed access to the stored resources: one collection a kind, read and written as its
document type (``records.runs.get(id) -> Run | None``). The store below keeps JSON objects; only
what must read what may not parse (recovery, the key migration, orphan removal) handles them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from qcog_mock.mockserver.documents import (
    ApiKey,
    Checkpoint,
    Dataset,
    Deployment,
    Environment,
    Experiment,
    Membership,
    Project,
    Run,
    User,
)
from qcog_mock.mockserver.store import Store


class Stored(Protocol):
    id: str

    def to_doc(self) -> dict[str, Any]: ...


D = TypeVar("D", bound=Stored)


def _unscoped(_: Any) -> str:
    return ""


class Collection(Generic[D]):
    """The documents of one kind. A scope (a project's, a run's) holds names unique within it."""

    def __init__(
        self,
        store: Store,
        kind: str,
        load: Callable[[dict[str, Any]], D],
        scope: Callable[[D], str] = _unscoped,
    ) -> None:
        self.store = store
        self.kind = kind
        self._load = load
        self.scope_of = scope

    def get(self, id_: str, scope: str = "") -> D | None:
        """By id; within ``scope`` if one is given (another scope's document is not found)."""
        doc = self.store.get(self.kind, id_)
        found = self._load(doc) if doc is not None else None
        if found is not None and scope and self.scope_of(found) != scope:
            return None
        return found

    def find(self, name: str, scope: str = "") -> D | None:
        """By name, within ``scope``."""
        doc = self.store.find(self.kind, name, scope)
        return self._load(doc) if doc is not None else None

    def all(
        self,
        scope: str | None = None,
        *,
        where: tuple[str, Any] | None = None,
        limit: int = -1,
        offset: int = 0,
        descending: bool = False,
    ) -> list[D]:
        """In creation order (or the newest first), a page of them (``Store.documents``)."""
        docs = self.store.documents(
            self.kind, scope, where=where, limit=limit, offset=offset, descending=descending
        )
        return [self._load(doc) for doc in docs]

    def count(self, scope: str | None = None) -> int:
        return self.store.count(self.kind, scope)

    def insert(self, document: D) -> None:
        """A new document; ``NameTaken`` if its name is taken in its scope (by the database)."""
        self.store.insert(self.kind, document.to_doc(), self.scope_of(document))

    def put(self, document: D) -> None:
        """Create or replace by id."""
        self.store.put(self.kind, document.to_doc(), self.scope_of(document))

    def delete(self, id_: str) -> None:
        self.store.delete(self.kind, id_)


class Records:
    """Every resource collection of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.users = Collection(store, "user", User.from_doc)
        self.projects = Collection(store, "project", Project.from_doc)
        self.api_keys = Collection(store, "api_key", ApiKey.from_doc)
        self.memberships = Collection(store, "user_project", Membership.from_doc)
        self.environments = Collection(store, "environment", Environment.from_doc)
        self.experiments = Collection(store, "experiment", Experiment.from_doc)
        self.datasets = Collection(store, "dataset", Dataset.from_doc, lambda d: d.project_id)
        self.runs = Collection(store, "run", Run.from_doc, lambda r: r.project_id)
        self.deployments = Collection(store, "deployment", Deployment.from_doc, lambda d: d.run_id)

    def checkpoints(self, run_id: str) -> list[Checkpoint]:
        """A run's checkpoints, by epoch."""
        return [Checkpoint.from_doc(doc) for doc in self.store.checkpoints(run_id)]
