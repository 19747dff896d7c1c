"""The README's test examples are real tests: extracted and run as a user would run them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform

pytestmark = pytest.mark.torch  # every test here trains

README = Path(__file__).parents[1] / "README.md"


def harness_examples() -> list[str]:
    """The Python blocks of the harness section that are test files."""
    section = README.read_text().split("## Testing your code against qcog-mock", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return [block for block in blocks if re.search(r"^(async )?def test_", block, re.M)]


def test_the_readme_harness_examples_pass_with_pytests_defaults(pytester: pytest.Pytester) -> None:
    examples = harness_examples()
    assert len(examples) == 2, "the pipeline test and the poller test"
    pytester.makepyfile(**{f"test_example_{i}": code for i, code in enumerate(examples)})
    # No ini file: pytest-asyncio in its default strict mode, as in a fresh project.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, warnings=0)
    # pytest-asyncio's warning about its loop-scope option, printed as pytest configures: a
    # fresh project that uses the fixtures needs no asyncio configuration, and is not told so.
    output = "\n".join(result.outlines + result.errlines)
    assert "is unset" not in output, output


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (apt-get install curl)")
def test_the_readme_curl_walkthrough_runs_a_job_over_http(tmp_path: Path) -> None:
    section = README.read_text().split("## The API over HTTP, with curl", 1)[1]
    script = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert script is not None
    settings = Settings(api_key="walkthrough-key", clock="auto")
    with QcogPlatform.socket(settings) as server:
        environment = {
            **os.environ,
            "QCOG_MOCK_URL": server.base_url.removesuffix("/api"),
            "QCOG_API_KEY": "walkthrough-key",
        }
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script[1]],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    # The finished run's checkpoints, one a line: its name and metrics.
    assert done.stdout.splitlines()[0].startswith("epoch-0001 {'loss': "), done.stdout
