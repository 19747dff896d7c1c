"""Seed files: the state a server starts from, written as TOML (``qcog-mock serve --seed FILE``).

Format (every table optional; names refer to each other; durations as in scenarios)::

    description = "What this seed is for"
    [[projects]]      name = "acme-forecasting"   description = "…"   allowed_gpus = []
    [[users]]         name = "ci-bot"  email = "ci@acme.example"  role = "user"   # or "admin"
                      projects = { acme-forecasting = "owner" }    # viewer, contributor, owner
    [[api_keys]]      key_env = "ACME_QCOG_API_KEY"                # or key = "…" in the file
                      user = "ci-bot"  project = "acme-forecasting"
    [[environments]]  name = "py3.12-acme"  configuration = { docker_image = "…" }
    [[datasets]]      name = "training-data"  csv = "training-data.csv"   # beside this file
                      # or synthetic = { dates = 2, assets = 100, features = 8, seed = 0 }
    [[runs]]          name = "baseline"  dataset = "training-data"  environment = "python3.12"
                      timeout = "24h"  retries = 1  hyperparameters = { epochs = 6 }
                      emulator = { epoch_seconds = 600, faults = [] }
                      wait = true            # until it ends; or a duration ("2h"); or false
    [[deployments]]   name = "production"  run = "baseline"  checkpoint = "best"
                      # "best" (smallest loss), "latest", a checkpoint's name, or
                      # criterion = { metric = "loss", value = "smallest" }

The first ``[[projects]]`` takes the place of the emulator's default project ``qcog-mock``: the
server's own key (``QCOG_API_KEY``) opens it, and every ``project =`` left out means it. A run's
hyperparameters go over a small General HSM sized to its dataset. The file is checked whole
before anything is made — names, references, keys, CSV files, run parameters — and a bad one is
one ``SeedError`` naming its line and the fix. It is then applied on a manual clock, in order
(projects, users, keys, environments, datasets, runs, deployments), so the same file gives the
same ids, timelines and metrics every time.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from qcog_mock.mockserver.clock import parse_duration
from qcog_mock.mockserver.errors import Invalid, PlatformError
from qcog_mock.mockserver.files import inspect_csv
from qcog_mock.mockserver.platform.catalog import SEED_EXPERIMENT
from qcog_mock.mockserver.platform.identity import SEED_PROJECT
from qcog_mock.mockserver.platform.shared import check_name
from qcog_mock.mockserver.runparams import GPU_TYPES, validate_params
from qcog_mock.mockserver.schemas import (
    DeploymentCreate,
    EnvironmentCreate,
    ProjectUpdate,
    RunCreate,
)
from qcog_mock.mockserver.settings import MAX_RETRIES

if TYPE_CHECKING:
    from qcog_mock.mockserver.platform import Platform

DEFAULT_ENVIRONMENTS = ("python3.12", "py3.12-cuda")  # the catalog's own
TARGET = "scaled_demedian_forward_return_22d"  # the synthetic panel's (trainer.synthetic)
SECTIONS = ("projects", "users", "api_keys", "environments", "datasets", "runs", "deployments")


class SeedError(ValueError):
    """A seed file that cannot be applied; the message names the file, the line and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectSpec(_Strict):
    name: str
    description: str | None = None
    # None: as the emulator makes it (the first project every GPU type, as its default project
    # has; the others none, as the platform makes new projects).
    allowed_gpus: list[str] | None = None


class UserSpec(_Strict):
    name: str
    email: str
    role: Literal["user", "admin"] = "user"
    projects: dict[str, Literal["viewer", "contributor", "owner"]] = Field(default_factory=dict)


class KeySpec(_Strict):
    key: str | None = None
    key_env: str | None = None
    user: str | None = None  # a [[users]] name; none: the emulator's own user (an admin)
    project: str | None = None


class EnvironmentSpec(_Strict):
    name: str
    description: str | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class SyntheticSpec(_Strict):
    dates: int = Field(default=2, ge=1)
    assets: int = Field(default=100, ge=2)
    features: int = Field(default=8, ge=1)
    seed: int = 0
    signal_share: float = Field(default=0.35, ge=0, le=1)


class DatasetSpec(_Strict):
    name: str
    project: str | None = None
    description: str | None = None
    csv: str | None = None
    synthetic: SyntheticSpec | None = None


class RunSpec(_Strict):
    name: str
    dataset: str
    project: str | None = None
    environment: str = "python3.12"
    description: str | None = None
    timeout: float | str = "24h"
    retries: int = 0
    cpu_count: int = 1
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    emulator: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    wait: bool | float | str = False


class DeploymentSpec(_Strict):
    name: str
    run: str
    project: str | None = None
    checkpoint: str = "best"
    criterion: dict[str, Any] | None = None
    version: str | None = None
    release_notes: str | None = None


class SeedFile(_Strict):
    description: str = ""
    projects: list[ProjectSpec] = Field(default_factory=list)
    users: list[UserSpec] = Field(default_factory=list)
    api_keys: list[KeySpec] = Field(default_factory=list)
    environments: list[EnvironmentSpec] = Field(default_factory=list)
    datasets: list[DatasetSpec] = Field(default_factory=list)
    runs: list[RunSpec] = Field(default_factory=list)
    deployments: list[DeploymentSpec] = Field(default_factory=list)


SPECS: dict[str, type[BaseModel]] = {
    "projects": ProjectSpec,
    "users": UserSpec,
    "api_keys": KeySpec,
    "environments": EnvironmentSpec,
    "datasets": DatasetSpec,
    "runs": RunSpec,
    "deployments": DeploymentSpec,
}


@dataclass
class Seed:
    """A checked seed file, with what it names resolved: ready to apply."""

    path: Path
    spec: SeedFile
    digest: str  # of the file's bytes: a data dir remembers which seed it started from
    lines: _Lines
    keys: list[str] = field(default_factory=list)  # [[api_keys]]' values, in order
    data: list[bytes] = field(default_factory=list)  # [[datasets]]' CSV content, in order
    params: list[dict[str, Any]] = field(default_factory=list)  # [[runs]]' params, in order

    @property
    def project(self) -> str:
        """The first project's name: the one that replaces the emulator's default, and the
        project of every entry that names none."""
        return self.spec.projects[0].name if self.spec.projects else SEED_PROJECT

    def project_of(self, name: str | None) -> str:
        return name or self.project

    def allowed_gpus(self, project: str) -> list[str]:
        for index, spec in enumerate(self.spec.projects):
            if spec.name == project and spec.allowed_gpus is not None:
                return spec.allowed_gpus
            if spec.name == project:
                return list(GPU_TYPES) if index == 0 else []
        return list(GPU_TYPES)  # the emulator's default project

    def fail(self, section: str, index: int, key: str | None, problem: str) -> SeedError:
        line = self.lines.line(section, index, key)
        entry = getattr(self.spec, section)[index] if section in SECTIONS else None
        name = getattr(entry, "name", None)
        what = f"[[{section}]] {name!r}" if name else f"[[{section}]] #{index + 1}"
        return SeedError(f"{self.path}, line {line}: {what}{f', {key}' if key else ''}: {problem}")


class _Lines:
    """Where each ``[[section]]`` entry, and each key in it, starts in the file: TOML parsers
    forget lines, and an error must name one."""

    _HEADER = re.compile(r"\[\[\s*([\w-]+)\s*\]\]")
    _SUBTABLE = re.compile(r"\[+\s*([\w-]+)\s*\.\s*([\w-]+)")
    _KEY = re.compile(r"([\w-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str) -> None:
        self.headers: dict[tuple[str, int], int] = {}
        self.keys: dict[tuple[str, int, str], int] = {}
        self.top: dict[str, int] = {}
        counts: Counter[str] = Counter()
        current: tuple[str, int] | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if header := self._HEADER.match(line):
                current = (header[1], counts[header[1]])
                counts[header[1]] += 1
                self.headers[current] = number
            elif sub := self._SUBTABLE.match(line):
                if current is not None and current[0] == sub[1]:  # [runs.hyperparameters]
                    self.keys.setdefault((*current, sub[2]), number)
                else:
                    current = None
            elif line.startswith("["):
                current = None
            elif key := self._KEY.match(line):
                name = key[1].strip('"')
                if current is None:
                    self.top.setdefault(name, number)
                else:
                    self.keys.setdefault((*current, name), number)

    def line(self, section: str, index: int | None, key: str | None) -> int:
        if index is None:
            return self.top.get(section, 1)
        if key is not None and (section, index, key) in self.keys:
            return self.keys[(section, index, key)]
        return self.headers.get((section, index), self.top.get(section, 1))


# Loading: everything checked before anything is made ----------------------------------------


def load(path: str | Path, environ: dict[str, str] | None = None) -> Seed:
    """The seed file at ``path``, checked and resolved; ``SeedError`` naming the line if not."""
    path = Path(path)
    environ = dict(os.environ) if environ is None else environ
    try:
        content = path.read_bytes()
    except OSError as error:
        raise SeedError(f"{path}: cannot read the seed file ({error.strerror}).") from None
    try:
        text = content.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise SeedError(f"{path}: not UTF-8 text; save the seed file as UTF-8.") from None
    except tomllib.TOMLDecodeError as error:
        raise SeedError(f"{path}: not valid TOML: {error}.") from None
    lines = _Lines(text)
    try:
        spec = SeedFile.model_validate(data)
    except pydantic.ValidationError as error:
        raise _invalid(path, data, lines, error.errors()[0]) from None
    seed = Seed(path, spec, hashlib.sha256(content).hexdigest(), lines)
    _check(seed, environ)
    return seed


def _invalid(path: Path, data: dict[str, Any], lines: _Lines, problem: Any) -> SeedError:
    """The first problem pydantic found, said as ``Seed.fail`` says the others."""
    loc = [part for part in problem["loc"] if part != ""]
    if not loc or loc[0] not in SECTIONS or len(loc) < 2 or not isinstance(loc[1], int):
        where = ".".join(map(str, loc)) or "the file"
        known = ", ".join(["description", *(f"[[{name}]]" for name in SECTIONS)])
        hint = f"; a seed file has {known}" if problem["type"] == "extra_forbidden" else ""
        line = lines.line(str(loc[0]), None, None) if loc else 1
        return SeedError(f"{path}, line {line}: {where}: {_plain(problem)}{hint}.")
    section, index = str(loc[0]), loc[1]
    key = ".".join(map(str, loc[2:])) or None
    entry = data[section][index]
    name = entry.get("name") if isinstance(entry, dict) else None
    what = f"[[{section}]] {name!r}" if isinstance(name, str) else f"[[{section}]] #{index + 1}"
    hint = ""
    if problem["type"] == "extra_forbidden":
        fields = ", ".join(SPECS[section].model_fields)
        hint = f"; [[{section}]] takes {fields}"
    line = lines.line(section, index, str(loc[2]) if len(loc) > 2 else None)
    return SeedError(f"{path}, line {line}: {what}, {key}: {_plain(problem)}{hint}.")


def _plain(problem: Any) -> str:
    """pydantic's message, without the prefix it puts before a validator's own words."""
    return str(problem["msg"]).removeprefix("Value error, ").rstrip(".")


def _check(seed: Seed, environ: dict[str, str]) -> None:
    """Every name, reference, key, file and run parameter, in the order they are applied."""
    checker = _Checker(seed)
    checker.projects()
    checker.users()
    checker.api_keys(environ)
    checker.environments()
    checker.datasets()
    checker.runs()
    checker.deployments()


class _Checker:
    def __init__(self, seed: Seed) -> None:
        self.seed = seed
        self.spec = seed.spec
        self.fail = seed.fail
        self.environments_known = set(DEFAULT_ENVIRONMENTS)
        self.columns: dict[tuple[str, str], list[str]] = {}  # by (project, dataset)
        self.runs_known: dict[tuple[str, str], RunSpec] = {}  # by (project, run)

    def _names(self, section: str, names: list[str], key: str = "name") -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if key == "name":
                _name(self.seed, section, index, name)
            if name in seen:
                raise self.fail(section, index, key, f"{name!r} is given twice; each is one.")
            seen.add(name)

    def _project(self, section: str, index: int, name: str | None, key: str = "project") -> str:
        known = [p.name for p in self.spec.projects]
        if name is not None and name not in known:
            choices = sorted(known) or ["(none: declare [[projects]])"]
            problem = (
                f"no project {name!r}; declare it under [[projects]], or use one of {choices}."
            )
            raise self.fail(section, index, key, problem)
        return self.seed.project_of(name)

    def _new_in_project(
        self, section: str, index: int, name: str, project: str | None, taken: Any
    ) -> str:
        """The project of a new entry, checked with its name: unique within the project."""
        _name(self.seed, section, index, name)
        project = self._project(section, index, project)
        if (project, name) in taken:
            problem = f"{name!r} is given twice in project {project!r}."
            raise self.fail(section, index, "name", problem)
        return project

    def _declared(
        self, section: str, index: int, key: str, name: str, project: str, declared: Any
    ) -> None:
        """``name`` (of a [[``key``s]] entry) declared in ``project``, or the names that are."""
        if (project, name) not in declared:
            known = sorted(n for p, n in declared if p == project)
            problem = (
                f"no {key} {name!r} in project {project!r}; declare it under [[{key}s]], or use "
                f"one of {known}."
            )
            raise self.fail(section, index, key, problem)

    def projects(self) -> None:
        self._names("projects", [p.name for p in self.spec.projects])
        for index, project in enumerate(self.spec.projects):
            unknown = [g for g in project.allowed_gpus or [] if g not in GPU_TYPES]
            if unknown:
                problem = f"unknown GPU type(s) {unknown}; use {list(GPU_TYPES)}."
                raise self.fail("projects", index, "allowed_gpus", problem)

    def users(self) -> None:
        self._names("users", [u.name for u in self.spec.users])
        self._names("users", [u.email for u in self.spec.users], "email")
        for index, user in enumerate(self.spec.users):
            for project in user.projects:
                self._project("users", index, project, "projects")

    def api_keys(self, environ: dict[str, str]) -> None:
        users = {u.name for u in self.spec.users}
        for index, entry in enumerate(self.spec.api_keys):
            key = _key(self.seed, index, entry, environ)
            if key in self.seed.keys:
                raise self.fail("api_keys", index, None, "this key is given twice; each is one.")
            self.seed.keys.append(key)
            if entry.user is not None and entry.user not in users:
                problem = (
                    f"no user {entry.user!r}; declare it under [[users]], or leave user out "
                    "(the emulator's own user)."
                )
                raise self.fail("api_keys", index, "user", problem)
            self._project("api_keys", index, entry.project)

    def environments(self) -> None:
        self._names("environments", [e.name for e in self.spec.environments])
        for index, environment in enumerate(self.spec.environments):
            if environment.name in DEFAULT_ENVIRONMENTS:
                problem = f"the emulator has {list(DEFAULT_ENVIRONMENTS)} already; choose another."
                raise self.fail("environments", index, "name", problem)
            self.environments_known.add(environment.name)

    def datasets(self) -> None:
        for index, dataset in enumerate(self.spec.datasets):
            project = self._new_in_project(
                "datasets", index, dataset.name, dataset.project, self.columns
            )
            content, header = _dataset(self.seed, index, dataset)
            self.seed.data.append(content)
            self.columns[(project, dataset.name)] = header

    def runs(self) -> None:
        for index, run in enumerate(self.spec.runs):
            project = self._new_in_project("runs", index, run.name, run.project, self.runs_known)
            self._declared("runs", index, "dataset", run.dataset, project, self.columns)
            if run.environment not in self.environments_known:
                known = sorted(self.environments_known)
                problem = f"no environment {run.environment!r}; use one of {known}."
                raise self.fail("runs", index, "environment", problem)
            _wait(self.seed, index, run.wait)
            columns, allowed = self.columns[(project, run.dataset)], self.seed.allowed_gpus(project)
            self.seed.params.append(_params(self.seed, index, run, columns, allowed))
            self.runs_known[(project, run.name)] = run

    def deployments(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        for index, deployment in enumerate(self.spec.deployments):
            _name(self.seed, "deployments", index, deployment.name)
            project = self._project("deployments", index, deployment.project)
            self._declared("deployments", index, "run", deployment.run, project, self.runs_known)
            if self.runs_known[(project, deployment.run)].wait is False:
                problem = (
                    f"run {deployment.run!r} does not wait, so it has no checkpoint to deploy "
                    "yet; give it wait = true."
                )
                raise self.fail("deployments", index, "run", problem)
            if deployment.criterion is not None and "metric" not in deployment.criterion:
                problem = 'give {metric = "loss", value = "smallest"} (or a value and an operator).'
                raise self.fail("deployments", index, "criterion", problem)
            if (project, deployment.run, deployment.name) in seen:
                problem = f"{deployment.name!r} is given twice for run {deployment.run!r}."
                raise self.fail("deployments", index, "name", problem)
            seen.add((project, deployment.run, deployment.name))


def _name(seed: Seed, section: str, index: int, name: str) -> None:
    try:
        check_name("name", name)
    except Invalid as error:
        raise seed.fail(section, index, "name", error.message.removeprefix("name: ")) from None


def _key(seed: Seed, index: int, entry: KeySpec, environ: dict[str, str]) -> str:
    if (entry.key is None) == (entry.key_env is None):
        raise seed.fail(
            "api_keys",
            index,
            None,
            'give the key either by value (key = "…") or from the environment '
            '(key_env = "VARIABLE"), one of the two.',
        )
    if entry.key_env is not None:
        value = environ.get(entry.key_env, "").strip()
        if not value:
            raise seed.fail(
                "api_keys",
                index,
                "key_env",
                f"the environment variable {entry.key_env} is not set; export {entry.key_env}=… "
                'before starting the server (or give key = "…").',
            )
        return value
    value = (entry.key or "").strip()
    if len(value) < 8 or any(c.isspace() or ord(c) < 32 for c in value):
        raise seed.fail(
            "api_keys",
            index,
            "key",
            "a key is at least 8 characters, without spaces or control characters.",
        )
    return value


def _dataset(seed: Seed, index: int, dataset: DatasetSpec) -> tuple[bytes, list[str]]:
    """The dataset's CSV content and its columns."""
    if (dataset.csv is None) == (dataset.synthetic is None):
        raise seed.fail(
            "datasets",
            index,
            None,
            'give csv = "file.csv" (a path beside the seed file) or synthetic = { dates = 2, '
            "assets = 100, features = 8 }, one of the two.",
        )
    if dataset.synthetic is not None:
        from qcog_mock.trainer.synthetic import synthetic_panel

        shape = dataset.synthetic
        frame = synthetic_panel(
            dates=shape.dates,
            assets=shape.assets,
            features=shape.features,
            signal_share=shape.signal_share,
            seed=shape.seed,
        )
        return frame.to_csv(index=False, float_format="%.7g").encode(), list(frame.columns)
    source = (seed.path.parent / dataset.csv).resolve() if dataset.csv else seed.path
    if not source.is_file():
        raise seed.fail(
            "datasets",
            index,
            "csv",
            f"no file {dataset.csv!r} beside the seed file ({source}); paths are relative to "
            "the seed file.",
        )
    try:
        header = inspect_csv(source).columns
    except Invalid as error:
        raise seed.fail("datasets", index, "csv", error.message.removeprefix("file: ")) from None
    return source.read_bytes(), header


def _wait(seed: Seed, index: int, wait: bool | float | str) -> None:
    if isinstance(wait, bool):
        return
    try:
        seconds = float(wait) if isinstance(wait, int | float) else parse_duration(wait)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise seed.fail(
            "runs",
            index,
            "wait",
            'true (until the run ends), false, or a duration such as "2h" to let it run that long.',
        )


def small_hsm(inputs: int, outputs: int = 1) -> dict[str, Any]:
    """The small General HSM a seed file's or a scenario's run trains unless it says more."""
    return {
        "hsm_model": "general", "epochs": 6, "batch_size": 128, "seed": 3, "targets": TARGET,
        "input_operator_count": inputs, "output_operator_count": outputs,
        "hilbert_space_dims": 2,
        "optimizer_config": {"type": "Adam", "default_params": {"lr": 0.02}},
        "loss_fn_config": {"type": "MSELoss"},
    }  # fmt: skip


def _params(
    seed: Seed, index: int, run: RunSpec, columns: list[str], allowed_gpus: list[str]
) -> dict[str, Any]:
    """The run's params as a client would send them, checked as the API checks them."""
    targets = run.hyperparameters.get("targets", TARGET)
    named = [targets] if isinstance(targets, str) else list(targets or [])
    if any(t not in columns for t in named):
        raise seed.fail(
            "runs",
            index,
            "hyperparameters",
            f"targets {named} are not all columns of dataset {run.dataset!r}; set "
            f"hyperparameters.targets to some of {columns[-3:]}…",
        )
    inputs = len(columns) - len(named)
    hyperparameters = {**small_hsm(inputs, len(named)), **run.hyperparameters}
    try:
        timeout = (
            run.timeout if isinstance(run.timeout, int | float) else parse_duration(run.timeout)
        )
    except ValueError as error:
        raise seed.fail("runs", index, "timeout", f'{error}; give seconds or "24h".') from None
    params: dict[str, Any] = {
        "hyperparameters": hyperparameters,
        "timeout": int(timeout),
        "retries": run.retries,
        "cpu_count": run.cpu_count,
    }
    if run.emulator:
        params["emulator"] = run.emulator
    try:
        validate_params(params, max_retries=MAX_RETRIES, allowed_gpus=allowed_gpus)
    except Invalid as error:
        message = error.message
        field = message.split(":", 1)[0].removeprefix("params.").split(".", 1)[0]
        key = field if field in RunSpec.model_fields else None
        raise seed.fail("runs", index, key, message.replace("params.", "", 1)) from None
    return params


# Applying: in order, on a manual clock --------------------------------------------------------


def apply(platform: Platform, seed: Seed) -> None:
    """Make what the seed says on a platform that has just been seeded with the defaults. A step
    that fails (a run that never makes a checkpoint to deploy) raises ``SeedError``; the caller
    then removes everything."""
    spec = seed.spec
    clock = platform.clock
    mode, speed = clock.mode, clock.speed
    clock.set_mode("manual")  # the same timeline whatever the server's mode
    platform.sim.wake()
    try:
        projects = _apply_identity(platform, seed)
        for environment in spec.environments:
            platform.catalog.create_environment(
                EnvironmentCreate(
                    name=environment.name,
                    description=environment.description,
                    configuration=environment.configuration,
                    metadata=environment.metadata,
                )
            )
        for index, dataset in enumerate(spec.datasets):
            project = projects[seed.project_of(dataset.project)]
            platform.datasets.upload(
                project, dataset.name, io.BytesIO(seed.data[index]), description=dataset.description
            )
        runs: dict[tuple[str, str], str] = {}
        for index, run in enumerate(spec.runs):
            key = (seed.project_of(run.project), run.name)
            runs[key] = _apply_run(platform, seed, index, projects)
        for index, deployment in enumerate(spec.deployments):
            project = projects[seed.project_of(deployment.project)]
            run_id = runs[(seed.project_of(deployment.project), deployment.run)]
            _apply_deployment(platform, seed, index, project, run_id)
    except PlatformError as error:  # what a check before could not know
        raise SeedError(str(error)) from None
    finally:
        clock.set_mode(mode, speed)
        platform.sim.wake()
        platform.store.save_clock(clock)


def _apply_identity(platform: Platform, seed: Seed) -> dict[str, str]:
    """Projects, users, memberships and keys; the projects' ids by name."""
    identity, spec = platform.identity, seed.spec
    projects = {seed.project: platform.store.setting("seed_project")}  # made under its name
    for index, project in enumerate(spec.projects):
        if index > 0:
            created = identity.create_project(project.name, project.description, [])
            projects[project.name] = created.id
        if project.allowed_gpus is not None:
            changes = ProjectUpdate(allowed_gpus=project.allowed_gpus)
            identity.update_project(projects[project.name], changes)
    users: dict[str, str] = {}
    for user in spec.users:
        user_id = users[user.name] = identity.create_user(user.email, user.name, user.role).id
        for name, role in user.projects.items():
            identity.add_user_to_project(user_id, projects[name], role)
    own_user = platform.store.setting("seed_user")
    for index, entry in enumerate(spec.api_keys):
        owner = users[entry.user] if entry.user else own_user
        identity.add_key(seed.keys[index], owner, projects[seed.project_of(entry.project)])
    return projects


def _apply_run(platform: Platform, seed: Seed, index: int, projects: dict[str, str]) -> str:
    run = seed.spec.runs[index]
    project = projects[seed.project_of(run.project)]
    dataset = platform.datasets.get(project, run.dataset, "name")
    environment = platform.catalog.get_environment(run.environment, "name")
    experiment = platform.catalog.get_experiment(SEED_EXPERIMENT, "name")
    body = RunCreate(
        experiment_id=experiment.id,
        environment_id=environment.id,
        dataset_id=dataset.id,
        params=seed.params[index],
        metadata=run.metadata,
        name=run.name,
        description=run.description,
    )
    created = platform.runs.create(project, body, None)
    if run.wait is True:
        _until_finished(platform, seed, index, project, created.id)
    elif run.wait is not False:
        duration = run.wait if isinstance(run.wait, int | float) else parse_duration(run.wait)
        platform.control.advance(seconds=float(duration))
    return created.id


def _until_finished(platform: Platform, seed: Seed, index: int, project: str, run_id: str) -> None:
    """Advance from event to event until the run has ended."""
    while platform.runs.get(project, run_id, "id").status not in ("completed", "failed"):
        upcoming = platform.sim.next_event_time()
        if upcoming is None:
            raise seed.fail(
                "runs", index, "wait", "the run stopped with nothing scheduled to end it."
            )
        platform.control.advance(to=upcoming)


def _apply_deployment(
    platform: Platform, seed: Seed, index: int, project: str, run_id: str
) -> None:
    deployment = seed.spec.deployments[index]
    criterion = deployment.criterion
    name: str | None = None
    if criterion is None and deployment.checkpoint == "best":
        criterion = {"metric": "loss", "value": "smallest"}
    elif criterion is None and deployment.checkpoint == "latest":
        checkpoints = platform.runs.checkpoints(project, run_id)
        if not checkpoints:
            raise seed.fail("deployments", index, "run", "the run has no checkpoint to deploy.")
        name = checkpoints[-1].name
    elif criterion is None:
        name = deployment.checkpoint
        made = [c.name for c in platform.runs.checkpoints(project, run_id)]
        if name not in made:
            problem = (
                f"the run made no checkpoint {name!r}; it made {made}: name one of them, or "
                'give "best" or "latest".'
            )
            raise seed.fail("deployments", index, "checkpoint", problem)
    body = DeploymentCreate(
        deployment_name=deployment.name,
        version=deployment.version,
        release_notes=deployment.release_notes,
        criterion=criterion,
        checkpoint_name=name,
    )
    try:
        platform.deployments.deploy(project, run_id, body)
    except PlatformError as error:
        key = "criterion" if deployment.criterion is not None else "checkpoint"
        raise seed.fail("deployments", index, key, error.message) from None
