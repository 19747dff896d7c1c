"""The Pythons qcog-mock claims beyond the one `make test` runs (3.11): 3.12 and 3.13.

`make pythons` runs these sessions, and `.ci/run` runs it after `make test`. For 3.12 and 3.13
the package index here serves torch only as its CUDA build (a 530 MB wheel and 4.7 GB of
libraries once installed); the small CPU build exists for 3.11 alone. So these sessions install
every dependency but torch and run the tests that need none: those not marked `torch` (the
client, the stand-ins, the plugin, the console, the server's HTTP surface, the install test).
The training itself is covered on 3.11, and its code does not differ between these Pythons.

`nox -s training` (not run by default) trains on 3.12 and 3.13 with that CUDA build. Measured on
3.12 here: torch took 81 s to install and 4.7 GB of disk, the rest 23 s, and the nine
training tests below 10 s. Not worth it on every CI run for code that is the same on each Python;
worth it when torch or the Pythons change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox

PYTHONS = ["3.12", "3.13"]

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests"]


def _name_pyenv_pythons() -> None:
    """pyenv's shims answer `python3.12` only for a version PYENV_VERSION names: add them."""
    if shutil.which("pyenv") is None:
        return

    def pyenv(*args: str) -> str:
        return subprocess.run(["pyenv", *args], capture_output=True, text=True).stdout

    installed = pyenv("versions", "--bare").split()
    current = os.environ.get("PYENV_VERSION") or pyenv("version-name").strip()
    wanted = [v for v in installed if v.rpartition(".")[0] in PYTHONS]
    os.environ["PYENV_VERSION"] = ":".join([*current.split(":"), *wanted])


_name_pyenv_pythons()


def _without_torch(requirements: list[str]) -> list[str]:
    return [r for r in requirements if not r.replace(" ", "").startswith("torch")]


def _requirements() -> list[str]:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    # The tools of `make lint` stay on 3.11; the tests need the rest of the dev extra.
    dev = [r for r in project["optional-dependencies"]["dev"] if not r.startswith(("ruff", "mypy"))]
    return _without_torch(project["dependencies"]) + dev


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The tests that need no torch, on this Python (extra pytest arguments pass through)."""
    session.install(*_requirements())
    # No dependencies: pip would otherwise fetch torch's CUDA build for this Python.
    session.install("--no-deps", "--no-build-isolation", "-e", ".")
    session.run("python", "-m", "pytest", "-n", "2", "-m", "not torch", *session.posargs)


@nox.session(python=PYTHONS)
def training(session: nox.Session) -> None:
    """Training on this Python, with torch from the index (its CUDA build here: 4.7 GB)."""
    session.install(*_requirements(), "torch>=2.3,<2.14")
    session.install("--no-deps", "--no-build-isolation", "-e", ".")
    session.run(
        "python", "-m", "pytest", "-p", "no:randomly", "-k", "example or gpu",
        "tests/client/test_example.py", "tests/fidelity/test_platform_fidelity.py",
        *session.posargs,
    )  # fmt: skip
