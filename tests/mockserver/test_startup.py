"""The server process never imports torch: the HTTP server, the platform and the engine run
without it, and only workers train and infer. So `serve` and a test's setup start without
paying for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from qcog_mock.mockserver.app import create_app, shared_routes
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings

SCRIPT = """
import asyncio, sys
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
import qcog_mock.mockserver.app

assert "torch" not in sys.modules, "importing the app imported torch"
from qcog_mock.trainer.synthetic import TARGET, synthetic_panel
from tests.mockserver.helpers import dataset_csv, hyperparameters

async def story(platform):
    async with platform.story() as story:
        await story.upload("data", dataset_csv())
        await story.submit("job", "data", {
            "hyperparameters": hyperparameters(epochs=2), "timeout": 3600, "retries": 1,
            "emulator": {"epoch_seconds": 60},
        })
        await story.advance(3600)
        run = await story.run("job")
    async with platform.http() as http:
        base = f"/api/v1/projects/{run['project_id']}/experiment_runs/{run['id']}/deployments"
        made = await http.post(base, json={"deployment_name": "d", "checkpoint_name": "epoch-0002"})
        unseen = synthetic_panel(dates=1, assets=5, features=4, seed=2).drop(columns=[TARGET])
        inference = await http.post(
            f"{base}/{made.json()['id']}/inferences/sync",
            json={"dataset_file": unseen.to_csv(index=False)},
        )
    assert inference.status_code == 200 and inference.json()["rows"] == 5, inference.text
    return run

with QcogPlatform.in_process(Settings(api_key="k", clock="manual")) as platform:
    assert "torch" not in sys.modules, "starting a platform imported torch"
    run = asyncio.run(story(platform))
assert run["status"] == "completed", run["status"]
assert "torch" not in sys.modules, "a run or an inference imported torch into the server"
print("no torch")
"""


@pytest.mark.torch
def test_the_server_trains_and_infers_without_importing_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "no torch"


def test_serve_imports_neither_torch_nor_pandas_nor_httpx_before_it_listens(tmp_path: Path) -> None:
    # What `serve` loads before it listens: the app, a platform, uvicorn. The dataset reader
    # (pandas) comes with the first upload, torch with the first inference (in a worker), the
    # webhook sender's HTTP client with the first delivery.
    script = (
        "import sys, uvicorn\n"
        "def listen(app, **options):\n"
        "    print(sorted({'torch', 'pandas', 'httpx'} & set(sys.modules)))\n"
        "    app.state.platform.close()\n"
        "uvicorn.run = listen  # where serve would start listening\n"
        "from qcog_mock.mockserver.cli.serve import serve\n"
        "from qcog_mock.mockserver.cli.main import parser\n"
        f"serve(parser().parse_args(['serve', '--data-dir', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def key_header(key: str) -> dict[str, str]:
    return {"Authorization": f"x-api-key {key}"}


async def test_a_second_app_shares_the_routes_the_first_prepared_and_keeps_its_own_state() -> None:
    """FastAPI prepares an included router's routes at an app's first request; a platform's
    app built after another's reuses that work instead of paying it again (a test's first
    request). Sharing routes must not share state: each app answers with its own platform."""
    first, second = Platform(Settings(api_key="one")), Platform(Settings(api_key="two"))
    try:
        apps = create_app(first), create_app(second)
        shared = set(map(id, shared_routes()))
        assert all(shared <= set(map(id, app.router.routes)) for app in apps)
        for app, key, other in ((apps[0], "one", "two"), (apps[1], "two", "one")):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                mine = await http.get("/api/v1/whoami", headers=key_header(key))
                theirs = await http.get("/api/v1/whoami", headers=key_header(other))
            assert mine.status_code == 200, mine.text
            assert theirs.status_code == 401, theirs.text
        assert apps[0].state.dashboard_token != apps[1].state.dashboard_token
    finally:
        first.close()
        second.close()
