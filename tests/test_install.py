"""qcog-mock installed as a user installs it: a wheel in a fresh virtualenv, next to a real
``qcogclient`` and a project with its own ``trainer.py`` and ``client/`` package.

Quick by design: the virtualenv sees this test environment's packages (torch is not installed
again) and the wheel goes in with ``--no-deps``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
SOURCES = (
    "pyproject.toml",
    "README.md",
    "qcog_mock",
    "trainer",
    "mockserver",
    "client",
    "compat",
    "scenarios",
)
STAND_IN = '''"""A real qcogclient, as far as this test knows."""
__version__ = "9.9.9"
PROVIDER = "the user's qcogclient"
'''


def build_wheel(out: Path) -> Path:
    """The wheel of a copy of the sources (the repository itself is left untouched)."""
    source = out / "source"
    source.mkdir(parents=True)
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(
                REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", out, source],
        check=True,
        capture_output=True,
    )
    return next(out.glob("qcog_mock-*.whl"))


def stand_in_wheel(out: Path) -> Path:
    """A one-module ``qcogclient`` distribution, written as a wheel by hand."""
    info = "qcogclient-9.9.9.dist-info"
    files = {
        "qcogclient/__init__.py": STAND_IN,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: qcogclient\nVersion: 9.9.9\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{info}/top_level.txt": "qcogclient\n",
    }

    def digest(text: str) -> str:
        raw = hashlib.sha256(text.encode()).digest()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    record = "".join(
        f"{name},sha256={digest(text)},{len(text.encode())}\n" for name, text in files.items()
    )
    path = out / "qcogclient-9.9.9-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return path


def user_project(root: Path, harness_example: str) -> Path:
    project = root / "my-pipeline"
    (project / "client").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "trainer.py").write_text("def fit() -> str:\n    return 'my trainer'\n")
    (project / "client" / "__init__.py").write_text("NAME = 'my client'\n")
    (project / "tests" / "test_mine.py").write_text(
        "import client\nimport qcogclient\nimport trainer\n\nimport qcog_mock.trainer\n\n\n"
        "def test_my_modules_and_qcog_mocks_work_side_by_side():\n"
        "    assert trainer.fit() == 'my trainer' and client.NAME == 'my client'\n"
        "    assert qcog_mock.trainer.train is not None\n"
        '    assert qcogclient.PROVIDER == "the user\'s qcogclient"\n'
    )
    (project / "tests" / "test_pipeline.py").write_text(harness_example)
    return project


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("install")
    wheel = build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # This environment's packages (torch, fastapi, pytest…) behind the venv's own.
    (site / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    install = [*pip, "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*install, stand_in_wheel(root)], check=True, capture_output=True)
    before = (site / "qcogclient" / "__init__.py").read_bytes()
    subprocess.run([*install, wheel], check=True, capture_output=True)
    assert (site / "qcogclient" / "__init__.py").read_bytes() == before
    return {"root": root, "wheel": wheel, "python": python, "site": site}


def test_the_wheel_holds_one_top_level_name_and_every_module(installed: dict[str, Path]) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = wheel.namelist()
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert wheel.read(info).decode().split() == ["qcog_mock"]
    assert {name.split("/")[0] for name in names} == {"qcog_mock", info.split("/")[0]}
    # Every module of the repository's parts is in the wheel, under the namespace.
    parts = {
        "trainer": "trainer",
        "mockserver": "mockserver",
        "client": "client",
        "compat": "compat",
        "scenarios": "scenarios",
    }
    expected = {
        f"qcog_mock/{parts[path.relative_to(REPO).parts[0]]}/"
        + "/".join(path.relative_to(REPO).parts[1:])
        for folder in parts
        # The dashboard's files and the example scenarios too.
        for pattern in ("*.py", "*.html", "*.css", "*.js", "*.toml")
        for path in (REPO / folder).rglob(pattern)
    }
    assert expected - set(names) == set()


def test_scenario_list_falls_back_to_the_shipped_examples(installed: dict[str, Path]) -> None:
    elsewhere = installed["root"] / "project-without-scenarios"
    elsewhere.mkdir(exist_ok=True)
    listed = subprocess.run(
        [installed["python"], "-m", "qcog_mock.mockserver.cli", "scenario", "list"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr
    shipped = sorted(path.name for path in (REPO / "scenarios").glob("*.toml"))
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("(no ./scenarios here: the examples shipped with qcog-mock")
    assert [Path(line.split()[0]).name for line in lines[1:]] == shipped
    assert all(str(installed["site"]) in line for line in lines[1:]), lines


def test_a_real_qcogclient_stays_what_import_returns(installed: dict[str, Path]) -> None:
    found = subprocess.run(
        [installed["python"], "-c", "import qcogclient, qcog_mock; print(qcogclient.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd=installed["root"],
    ).stdout.strip()
    assert Path(found) == installed["site"] / "qcogclient" / "__init__.py"


@pytest.mark.torch
def test_a_user_project_runs_its_tests_and_the_readme_example(installed: dict[str, Path]) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Testing your code against qcog-mock", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    project = user_project(installed["root"], example[1])
    result = subprocess.run(
        [installed["python"], "-m", "pytest", "-p", "no:cacheprovider", "-rA"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 passed" in output
    # The header names the real qcogclient in use, and the stand-in for the missing qcog_types.
    assert "qcogclient 9.9.9 (real, " in output, output
    assert "qcog_types: qcog-mock's stand-in" in output, output


def test_every_import_of_the_parts_goes_through_the_namespace() -> None:
    """A bare ``import trainer`` would load a user's own module of that name, or ours twice."""
    bare = re.compile(r"^\s*(from|import) (trainer|mockserver|client|compat)\b", re.MULTILINE)
    folders = (
        "qcog_mock",
        "trainer",
        "mockserver",
        "client",
        "compat",
        "tests",
        "bench",
        "examples",
    )
    offenders = [
        str(path.relative_to(REPO))
        for folder in folders
        for path in (REPO / folder).rglob("*.py")
        if bare.search(path.read_text())
    ]
    assert offenders == []
