"""examples/long_running_job.py runs as a newcomer would run it, against a server of its own."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform

pytestmark = pytest.mark.torch  # every test here trains

EXAMPLE = Path(__file__).parents[2] / "examples" / "long_running_job.py"


async def test_the_example_runs_the_guides_job_and_its_next_steps(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("QCOG_ENV", raising=False)
    monkeypatch.setenv("QCOG_API_KEY", "example-key")
    monkeypatch.chdir(tmp_path)
    spec = importlib.util.spec_from_file_location("long_running_job", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with QcogPlatform.socket(Settings(api_key="example-key", clock="auto")) as server:
        monkeypatch.setenv("QCOG_BASE_URL", server.base_url)
        await example.main()
    out = capsys.readouterr().out
    assert "Status: completed" in out
    assert out.count(": timed_out (") == 3 and "attempt 4: completed" in out
    assert "Deployed epoch-" in out and "Predictions for 5 new rows: [[" in out
