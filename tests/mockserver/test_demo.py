"""The main job (`make demo`): the guide's job told from the emulator's timeline."""

from __future__ import annotations

import pytest

from qcog_mock.mockserver.testing.demo import main, sparkline


async def test_the_demo_tells_a_four_attempt_story(capsys: pytest.CaptureFixture[str]) -> None:
    # 80 epochs at 3,300 s: 26 per 24-hour attempt, so all four attempts are needed.
    await main(rows=300, epochs=80)
    out = capsys.readouterr().out
    for line in (
        "attempt 1 started",
        "attempt 1 timed out: timed out after 86400 s",
        "run pending: attempt 2 queued",
        "attempt 4 completed",
        "Status: completed",
        "epochs_completed   80",
    ):
        assert line in out, line
    assert out.count("timed_out resumed from") == 3


def test_sparkline_scales_and_caps_its_width() -> None:
    assert sparkline([3.0, 2.0, 1.0]) == "█▄▁"
    assert len(sparkline([float(i) for i in range(200)], width=50)) == 50
