"""The README's test examples are real tests: extracted and run as a user would run them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
