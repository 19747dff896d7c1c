"""Seed files: the repository's example makes exactly its state, the same every time; a bad file
names its line and makes nothing; a reset goes back to the seeded state; the marker takes one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.clock import parse_time
from qcog_mock.mockserver.platform import Platform as Emulator
from qcog_mock.mockserver.seeding import SeedError, load
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "seed" / "ci-seed.toml"
ADMIN_KEY = "seed-test-admin-key"
CI_KEY = "acme-ci-secret-0001"
RESEARCH_KEY = "acme-research-local-key"  # in the example, by value


@pytest.fixture(autouse=True)
def ci_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI job's secret, as its environment holds it."""
    monkeypatch.setenv("ACME_QCOG_API_KEY", CI_KEY)


@asynccontextmanager
async def seeded(**settings: Any) -> AsyncIterator[tuple[QcogPlatform, httpx.AsyncClient]]:
    values: dict[str, Any] = {"api_key": ADMIN_KEY, "clock": "manual", "seed_file": EXAMPLE}
    with QcogPlatform.in_process(Settings(**{**values, **settings})) as platform:
        async with platform.http() as admin:
            yield platform, admin


def as_key(platform: QcogPlatform, key: str) -> httpx.AsyncClient:
    client = platform.http()
    client.headers["Authorization"] = f"x-api-key {key}"
    return client


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def state_of(platform: QcogPlatform) -> dict[str, Any]:
    """What the API shows of the seeded state, by the keys the seed made."""
    found: dict[str, Any] = {}
    for key in (CI_KEY, RESEARCH_KEY):
        async with as_key(platform, key) as client:
            me = await get(client, "/api/v1/whoami")
            base = f"/api/v1/projects/{me['project_id']}"
            runs = await get(client, f"{base}/experiment_runs")
            found[me["project_name"]] = {
                "user": me["user_name"],
                "admin": bool(me["system_permissions"]),
                "datasets": [
                    (d["name"], d["number_of_rows"], d["number_of_columns"])
                    for d in await get(client, f"{base}/datasets")
                ],
                "runs": {
                    run["name"]: {
                        "id": run["id"],
                        "status": run["status"],
                        "attempts": [a["outcome"] for a in run["attempts"]],
                        "deployments": [
                            (d["name"], d["checkpoint_name"], d["version"])
                            for d in await get(
                                client, f"{base}/experiment_runs/{run['id']}/deployments"
                            )
                        ],
                    }
                    for run in runs
                },
            }
    return found


@pytest.mark.torch
async def test_the_example_seed_gives_exactly_its_state_and_a_reset_returns_to_it() -> None:
    async with seeded() as (platform, admin):
        projects = await get(admin, "/api/v1/projects")
        assert [p["name"] for p in projects] == ["acme-forecasting", "acme-research"]
        environments = await get(admin, "/api/v1/environments")
        assert [e["name"] for e in environments] == ["python3.12", "py3.12-cuda"]
        state = await state_of(platform)
        forecasting, research = state["acme-forecasting"], state["acme-research"]
        assert forecasting["user"] == "ci-bot" and not forecasting["admin"]
        assert forecasting["datasets"] == [("training-data", 80, 5)]
        baseline = forecasting["runs"]["baseline"]
        assert baseline["status"] == "completed" and baseline["attempts"] == ["completed"]
        # "best": the checkpoint of the smallest loss, deployed under the file's version.
        assert platform.backend is not None
        checkpoints = platform.backend.store.checkpoints(baseline["id"])
        best = min(checkpoints, key=lambda c: c["metrics"]["loss"])["name"]
        assert baseline["deployments"] == [("production", best, "v1.0.0")]
        assert research["datasets"] == [("panel", 100, 5)]
        assert research["runs"]["exploration"]["status"] == "pending"  # not waited for
        assert research["runs"].keys() == {"exploration"}  # each key opens its project only

        # The server's own key opens the first project, which took the default's place.
        me = await get(admin, "/api/v1/whoami")
        assert me["project_name"] == "acme-forecasting"

        # The deployment answers.
        async with as_key(platform, CI_KEY) as client:
            me = await get(client, "/api/v1/whoami")
            run = f"/api/v1/projects/{me['project_id']}/experiment_runs/{baseline['id']}"
            deployed = await get(client, f"{run}/deployments/production", identifier="name")
            lines = (EXAMPLE.parent / "training-data.csv").read_text().splitlines()[:4]
            rows = [line.rsplit(",", 1)[0] for line in lines]  # the features, not the target
            answer = await client.post(
                f"{run}/deployments/{deployed['id']}/inferences/sync",
                json={"dataset_file": "\n".join(rows)},
            )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["predictions"]) == 3

        # A change, then a reset: the seeded state again, same ids, same clock.
        clock = (await get(admin, "/_emulator/clock"))["now"]
        await admin.post("/_emulator/clock/advance", json={"seconds": 86_400})
        research_project = projects[1]["id"]
        gone = await admin.post(
            f"/api/v1/projects/{research_project}/datasets/upload",
            params={"name": "scratch", "format": "csv"},
            files={"file": ("x.csv", b"a,b\n1,2\n3,4\n")},
        )
        assert gone.status_code in (200, 201), gone.text
        assert (await admin.post("/_emulator/reset")).status_code == 200
        assert await state_of(platform) == state
        assert (await get(admin, "/_emulator/clock"))["now"] == clock


@pytest.mark.torch
async def test_the_same_seed_gives_the_same_ids_timeline_and_metrics() -> None:
    seen = []
    for _ in range(2):
        async with seeded() as (platform, admin):
            events = await get(admin, "/_emulator/events")
            state = await state_of(platform)
            run_id = state["acme-forecasting"]["runs"]["baseline"]["id"]
            async with as_key(platform, CI_KEY) as client:
                me = await get(client, "/api/v1/whoami")
                run = await get(
                    client, f"/api/v1/projects/{me['project_id']}/experiment_runs/{run_id}"
                )
            from qcog_mock.trainer.experiment import WALL_TIME_METRICS  # torch: not at collection

            metrics = {k: v for k, v in run["metrics"].items() if k not in WALL_TIME_METRICS}
            seen.append((state, events, metrics))
    assert seen[0] == seen[1]
    assert any(e["type"] == "run.completed" for e in seen[0][1])


BAD_REFERENCE = """\
[[projects]]
name = "acme"

[[datasets]]
name = "training-data"
synthetic = { features = 3 }

[[runs]]
name = "baseline"
dataset = "trainig-data"
wait = true
"""


def test_a_bad_reference_names_its_line_and_creates_nothing(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text(BAD_REFERENCE)
    data_dir = tmp_path / "data"
    with pytest.raises(SeedError) as raised:
        Emulator(Settings(seed_file=seed, data_dir=data_dir))
    message = str(raised.value)
    assert message.startswith(f"{seed}, line 10: [[runs]] 'baseline', dataset: ")
    assert "no dataset 'trainig-data' in project 'acme'" in message
    assert "['training-data']" in message  # the fix: the names that exist
    assert not data_dir.exists()  # checked before anything was opened

    # The same from the command line: one line, exit status 1, no data dir.
    port = free_port()
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--seed", str(seed)]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"qcog-mock serve: {message}"
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ('[[projects]]\nname = "a"\ncolour = 3\n', 3, "[[projects]] takes name, description"),
        ('[[api_keys]]\nkey_env = "ACME_UNSET_VARIABLE"\n', 2, "export ACME_UNSET_VARIABLE="),
        ('[[datasets]]\nname = "d"\ncsv = "missing.csv"\n', 3, "relative to the seed file"),
        (
            '[[datasets]]\nname = "d"\nsynthetic = {}\n[[runs]]\nname = "r"\ndataset = "d"\n'
            "hyperparameters = { epochs = 0 }\n",
            7,
            "epochs must be at least 1",
        ),
        (
            '[[datasets]]\nname = "d"\nsynthetic = {}\n[[runs]]\nname = "r"\ndataset = "d"\n'
            '[[deployments]]\nname = "prod"\nrun = "r"\n',
            9,
            "give it wait = true",
        ),
        (
            '[[users]]\nname = "u"\nemail = "u@x"\nprojects = { nowhere = "owner" }\n',
            4,
            "no project",
        ),
    ],
)
def test_each_mistake_is_one_error_naming_its_line_and_the_fix(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text(text)
    with pytest.raises(SeedError) as raised:
        load(seed, environ={})
    assert str(raised.value).startswith(f"{seed}, line {line}: ")
    assert says in str(raised.value)


@pytest.mark.torch
def test_a_seed_that_fails_while_applied_leaves_nothing(tmp_path: Path) -> None:
    """A checkpoint named in the file that the run never makes: known only once it has run."""
    seed = tmp_path / "seed.toml"
    seed.write_text(
        '[[datasets]]\nname = "d"\nsynthetic = { assets = 40, features = 3 }\n'
        '[[runs]]\nname = "r"\ndataset = "d"\nhyperparameters = { epochs = 2, batch_size = 16 }\n'
        'wait = true\n[[deployments]]\nname = "prod"\nrun = "r"\ncheckpoint = "epoch-0099"\n'
    )
    data_dir = tmp_path / "data"
    with pytest.raises(SeedError) as raised:
        Emulator(Settings(seed_file=seed, data_dir=data_dir))
    assert str(raised.value).startswith(f"{seed}, line 12: [[deployments]] 'prod', checkpoint: ")
    assert "no checkpoint 'epoch-0099'; it made ['epoch-0001', 'epoch-0002']" in str(raised.value)
    assert list((data_dir / "datasets").iterdir()) == []
    assert list((data_dir / "checkpoints").iterdir()) == []
    # The data dir starts blank next time: nothing of the failed seed was kept.
    emulator = Emulator(Settings(data_dir=data_dir))
    try:
        assert emulator.store.documents("run") == []
        assert [p.name for p in emulator.identity.list_projects(10, 0)] == ["qcog-mock"]
    finally:
        emulator.close()


@pytest.mark.torch
@pytest.mark.parametrize("nth", [1, 2])  # the second in a worker starts from the session's copy
@pytest.mark.qcog(seed="../../examples/seed/ci-seed.toml", clock="manual")
async def test_the_marker_starts_a_test_from_a_seed_file(
    qcog_platform: QcogPlatform, nth: int
) -> None:
    state = await state_of(qcog_platform)
    assert state["acme-forecasting"]["runs"]["baseline"]["status"] == "completed"
    assert state["acme-research"]["runs"]["exploration"]["status"] == "pending"
    async with qcog_platform.emulator() as emulator:
        assert (await emulator.clock())["mode"] == "manual"


@pytest.mark.torch
async def test_a_run_the_seed_does_not_wait_for_goes_on_once_the_server_runs() -> None:
    async with seeded(clock="auto") as (platform, admin):
        settled = await admin.post("/_emulator/clock/settle")
        assert settled.json()["settled"], settled.text
        exploration = (await state_of(platform))["acme-research"]["runs"]["exploration"]
        assert exploration["status"] == "completed" and exploration["attempts"] == ["completed"]
        # One attempt computed it: each epoch committed once.
        events = await get(admin, "/_emulator/events", run_id=exploration["id"])
        assert [e["epoch"] for e in events if e["type"] == "checkpoint.saved"] == [1, 2, 3]
        assert platform.backend is not None and platform.backend.engine.stranded() == []


DEMO = ROOT / "examples" / "seed" / "demo.toml"


@pytest.mark.torch
async def test_the_demo_seed_opens_on_runs_done_retried_running_and_deployed() -> None:
    async with seeded(seed_file=DEMO) as (_, admin):
        me = await get(admin, "/api/v1/whoami")
        base = f"/api/v1/projects/{me['project_id']}/experiment_runs"
        runs = {run["name"]: run for run in await get(admin, base)}
        outcomes = {name: [a["outcome"] for a in run["attempts"]] for name, run in runs.items()}
        assert outcomes == {
            "baseline": ["completed"],
            "wider": ["completed"],
            "crash-and-resume": ["crashed", "completed"],
            "long-job": [None],  # still in its first attempt
        }
        long_job = runs["long-job"]
        assert long_job["status"] == "running"
        # wait = "6h": the clock stopped six hours after it was submitted.
        clock = await get(admin, "/_emulator/clock")
        assert clock["timestamp"] - parse_time(long_job["created_at"]) == 6 * 3600
        deployments = await get(admin, f"{base}/{runs['wider']['id']}/deployments")
        assert [d["name"] for d in deployments] == ["production"]


def test_the_marker_fails_a_test_on_a_bad_seed_with_its_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", seed=BAD_REFERENCE)
    pytester.makepyfile(
        test_seeded="""
        import pytest

        @pytest.mark.qcog(seed="seed.toml")
        async def test_it(qcog_client):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(errors=1)
    output = "\n".join(result.outlines)
    assert "seed.toml, line 10: [[runs]] 'baseline', dataset: no dataset 'trainig-data'" in output
    assert "During handling" not in output and "Traceback" not in output
