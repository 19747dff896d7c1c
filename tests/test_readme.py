"""The README's test example is a real test: extracted and run as a user would run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[1] / "README.md"


def test_the_readme_harness_example_passes(pytester: pytest.Pytester) -> None:
    section = README.read_text().split("## Testing your code against qcog-mock", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert example is not None
    pytester.makepyfile(test_example=example[1])
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=function",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
