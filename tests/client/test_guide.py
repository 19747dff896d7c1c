"""The long-running-jobs guide, verbatim, against qcog-mock.

``long-running-jobs.md`` beside this file is the platform's guide as published. Its Python blocks
run here exactly as written — configuration, hyperparameters, submission, status — with only the
environment prepared, as a user would: a server on the client's default address
(``http://localhost:8001/api``), ``QCOG_API_KEY`` set, and a dataset uploaded under the guide's
name, ``"training-dat  "``.
"""

from __future__ import annotations

import ast
import io
import re
from contextlib import ExitStack, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from qcog_mock import compat
from qcog_mock.client import ProjectClient, wait_for_run
from qcog_mock.client.adapters import load_dataframe
from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.trainer.synthetic import synthetic_panel

pytestmark = pytest.mark.torch  # every test here trains

GUIDE = Path(__file__).with_name("long-running-jobs.md")
KEY = "guide-key"
HOUR = 3600


def guide_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    assert len(blocks) == 4, "configuration, hyperparameters, submission, status"
    return blocks


def guide_code() -> str:
    return "\n".join(guide_blocks())


async def run_verbatim(code: str) -> tuple[dict[str, Any], str]:
    namespace: dict[str, Any] = {"__name__": "guide"}
    compiled = compile(code, str(GUIDE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    output = io.StringIO()
    with redirect_stdout(output):
        result = eval(compiled, namespace)  # the guide's own code, as published
        if result is not None:
            await result
    return namespace, output.getvalue()


@pytest.fixture
def prepared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A server on the default address, the key in the environment, nothing else."""
    monkeypatch.delenv("QCOG_ENV", raising=False)
    monkeypatch.setenv("QCOG_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)  # no stray .env
    # 2 hours per epoch: 12 epochs fit in a 24-hour attempt. On this dataset the guide's early
    # stopping ends training at epoch 38, so the job needs all four attempts.
    settings = Settings(api_key=KEY, clock="auto", epoch_seconds=2 * HOUR)
    with ExitStack() as stack:
        # The guide names no address: only the client's default one will do.
        try:
            server = stack.enter_context(QcogPlatform.socket(settings, port=8001))
        except RuntimeError as busy:
            pytest.skip(f"the guide runs verbatim only against localhost:8001: {busy}")
        assert server.backend is not None
        yield server.backend


async def test_the_guide_runs_verbatim_and_its_job_uses_retries(prepared: Platform) -> None:
    # The guide writes target=, which the real qcog_types refuses; qcog-mock's stand-in takes it
    # with a warning (a kept difference, README: Fidelity).
    if compat.provider("qcog_types").source != "shim":
        pytest.skip(
            "the guide's target= needs qcog-mock's stand-in qcog_types; the installed real "
            "package refuses it (targets Field required), as the platform's client would"
        )
    # The environment: the guide's dataset, 77 feature columns + its target, uploaded by name.
    async with ProjectClient(api_key=KEY) as project:
        frame = synthetic_panel(dates=30, assets=100, seed=11)
        uploaded = await project.upload_dataset(load_dataframe(frame), "training-dat  ")
        assert "response" in uploaded, uploaded

    with pytest.warns(UserWarning, match=r"target= .* the real qcog_types refuses it"):
        namespace, printed = await run_verbatim(guide_code())

    status, metrics, error = namespace["status"], namespace["metrics"], namespace["error"]
    assert status in ("pending", "running", "completed", "failed")
    assert printed.splitlines()[0] == status
    assert error is None or isinstance(error, list)
    run = await wait_for_run(namespace["client"], "long-running-job")
    assert run["status"] == "completed", run["errors"]
    assert run["params"]["timeout"] == 86_400 and run["params"]["retries"] == 3
    assert run["params"]["hyperparameters"]["targets"] == "scaled_demedian_forward_return_22d"
    outcomes = [a["outcome"] for a in run["attempts"]]
    assert outcomes == ["timed_out", "timed_out", "timed_out", "completed"]
    assert [a["epochs_completed"] for a in run["attempts"]] == [12, 12, 12, 2]
    assert run["runtime_seconds"] == 3 * 24 * HOUR + 2 * 2 * HOUR
    assert run["metrics"]["epochs_completed"] == 38  # early stopping, in the fourth attempt
    assert metrics is None or isinstance(metrics, dict)

    # The configuration and status blocks again, once the job is done: what a user sees.
    blocks = guide_blocks()
    namespace_after, printed_after = await run_verbatim("\n".join([blocks[0], blocks[3]]))
    assert namespace_after["status"] == "completed"
    assert namespace_after["metrics"]["test_loss"] == run["metrics"]["test_loss"]
    assert printed_after.splitlines()[0] == "completed"
