"""The main job (`make demo`): the guide's job told from the emulator's timeline."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from qcog_mock.mockserver.cli.demo import fit, main, sparkline


async def test_the_demo_tells_a_four_attempt_story(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 80 epochs at 3,300 s: 26 per 24-hour attempt, so all four attempts are needed.
    picture = tmp_path / "demo.png"
    await main(rows=300, epochs=80, picture=picture)
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
    # The guide's next steps: the best checkpoint deployed, predictions beside the true values.
    assert "(smallest loss), asked about 500 rows it never saw:" in out
    table = out.split("rows it never saw:", 1)[1].splitlines()[2:7]
    assert len(table) == 5 and all(len(line.split()) == 2 for line in table)
    # With a measure of the fit, so that one row far off does not read as failure.
    found = re.search(r"the fit over all 500: R² (-?\d\.\d+) .*correlation (-?\d\.\d+)", out)
    assert found, out
    assert -1 <= float(found[2]) <= 1
    # And one picture of the run, whose path is printed.
    assert f"Picture of the run (attempts and loss curves): {picture}" in out
    content = picture.read_bytes()
    assert content.startswith(b"\x89PNG\r\n") and len(content) > 20_000


def test_the_fit_is_r2_and_correlation() -> None:
    assert fit([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == (1.0, 1.0)
    r2, correlation = fit([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])  # the mean predictor
    assert r2 == 0.0 and math.isnan(correlation)
    r2, correlation = fit([3.0, 2.0, 1.0], [1.0, 2.0, 3.0])
    assert r2 == -3.0 and correlation == pytest.approx(-1.0)


def test_sparkline_scales_and_caps_its_width() -> None:
    assert sparkline([3.0, 2.0, 1.0]) == "█▄▁"
    assert len(sparkline([float(i) for i in range(200)], width=50)) == 50


def test_demo_serve_prints_the_dashboard_and_stays_up(tmp_path: Path) -> None:
    """`qcog-mock demo --serve`: the job over real HTTP, then the server stays up and the
    printed dashboard link signs a browser in."""
    command = [sys.executable, "-m", "qcog_mock.mockserver.cli", "demo", "--serve", "--port", "0"]
    command += ["--rows", "200", "--epochs", "3", "--picture", str(tmp_path / "demo.png")]
    demo = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = []
        assert demo.stdout is not None
        for line in demo.stdout:  # ends with the process, so a failed demo fails the test
            lines.append(line)
            if line.startswith("Ctrl-C to stop."):
                break
        out = "".join(lines)
        for expected in ("Status: completed", "The emulator stays up: http://127.0.0.1:"):
            assert expected in out, f"{expected!r} missing from the demo's output:\n{out}"
        link = re.findall(r"^Dashboard: (\S+)$", out, re.M)[-1]
        assert link == re.findall(r"^Dashboard \(watch the job live\): (\S+)$", out, re.M)[0]
        with httpx.Client() as browser:
            signed = browser.get(link, follow_redirects=True)
            assert signed.status_code == 200 and 'data-run="long-running-job"' in signed.text
            assert "completed" in signed.text
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(60)
        except subprocess.TimeoutExpired:
            demo.kill()  # never left serving after the test (test_shutdown.py says why not)
            demo.wait()
            raise
    assert code == 0
