"""The dashboard over HTTP: who may see it, how a browser signs in, what its pages show, and
the clock controls. (tests/browser/ drives the same pages in Chromium.)"""

from __future__ import annotations

import base64
import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from qcog_mock.mockserver.dashboard.figure import run_figure
from qcog_mock.mockserver.dashboard.svg import losses, timeline
from qcog_mock.mockserver.testing.servers import free_port
from tests.mockserver.helpers import Platform, hyperparameters
from tests.mockserver.test_security import user_key

UI = "/_emulator/ui"


def browser(platform: Platform) -> httpx.AsyncClient:
    """A client with no credentials, as a browser that has not signed in (its posts say
    where they come from, as browsers' do)."""
    return httpx.AsyncClient(
        transport=platform.client._transport,
        base_url="http://testserver",
        headers={"Origin": "http://testserver"},
    )


def token(platform: Platform) -> str:
    assert platform.dashboard_token is not None
    return platform.dashboard_token


async def signed_in(platform: Platform) -> httpx.AsyncClient:
    web = browser(platform)
    answer = await web.post(
        f"{UI}/login", data={"username": "admin", "password": "admin", "next": f"{UI}/"}
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"{UI}/"
    return web


async def retried_run(platform: Platform, **params: Any) -> dict[str, Any]:
    """A run whose first two attempts time out and whose third completes (6 epochs)."""
    dataset = await platform.dataset_id()
    await platform.story.submit(
        "job",
        dataset_id=dataset,
        parameters={
            "hyperparameters": hyperparameters(epochs=6),
            "timeout": 3600,
            "retries": 2,
            "emulator": {"epoch_seconds": 1500},
            **params,
        },
    )
    await platform.advance(3 * 3600)
    run = await platform.story.run("job")
    assert [a["outcome"] for a in run["attempts"]] == ["timed_out", "timed_out", "completed"]
    return run


async def test_anonymous_callers_are_sent_to_the_login_form_and_refused(
    platform: Platform,
) -> None:
    web = browser(platform)
    page = await web.get(f"{UI}/runs/x?y=1")
    assert page.status_code == 303
    assert page.headers["location"] == f"{UI}/login?next=/_emulator/ui/runs/x%3Fy%3D1"
    posted = await web.post(f"{UI}/clock", data={"action": "advance", "duration": "1d"})
    assert posted.status_code == 401
    assert (await platform.story.clock())["now"] == "2026-01-01T00:00:00Z"  # nothing moved
    # Only the login form (and its stylesheet and script) answer without credentials.
    assert (await web.get(f"{UI}/login")).status_code == 200
    assert (await web.get(f"{UI}/static/ui.css")).status_code == 200
    # A user's key is not the operator's; the admin's key or basic credentials are.
    user = await user_key(platform)
    as_user = await web.get(f"{UI}/", headers={"Authorization": f"x-api-key {user}"})
    assert as_user.status_code == 403
    assert (await platform.client.get(f"{UI}/")).status_code == 200  # KEY is the admin's
    basic = base64.b64encode(b"admin:admin").decode()
    assert (await web.get(f"{UI}/", headers={"Authorization": f"Basic {basic}"})).status_code == 200


async def test_the_login_form_and_the_token_url_set_a_strict_session_cookie(
    platform: Platform,
) -> None:
    web = browser(platform)
    wrong = await web.post(f"{UI}/login", data={"username": "admin", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    assert "set-cookie" not in wrong.headers
    web = await signed_in(platform)
    cookie = web.cookies.jar._cookies  # type: ignore[attr-defined]
    assert cookie, "a session cookie is set"
    page = await web.get(f"{UI}/")
    assert page.status_code == 200 and "Runs of qcog-mock" in page.text
    answer = await browser(platform).post(
        f"{UI}/login", data={"username": "admin", "password": "admin"}
    )
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/_emulator/ui" in header

    link = await browser(platform).get(f"{UI}/login", params={"token": token(platform)})
    assert link.status_code == 303 and link.headers["location"] == f"{UI}/"
    assert "qcog_mock_ui=" in link.headers["set-cookie"]
    stale = await browser(platform).get(f"{UI}/login", params={"token": "old"})
    assert stale.status_code == 401 and "changes each time the server starts" in stale.text
    # After signing in, the browser goes back where it was, never to another site.
    for target, expected in ((f"{UI}/runs/abc", f"{UI}/runs/abc"), ("https://x.test", f"{UI}/")):
        answer = await browser(platform).get(
            f"{UI}/login", params={"token": token(platform), "next": target}
        )
        assert answer.headers["location"] == expected
    out = await web.post(f"{UI}/logout")
    assert out.status_code == 303 and (await web.get(f"{UI}/")).status_code == 303


@pytest.mark.torch
async def test_pages_are_self_contained_and_say_so_to_the_browser(platform: Platform) -> None:
    await retried_run(platform)
    web = await signed_in(platform)
    run_id = (await platform.story.run("job"))["id"]
    for path in (f"{UI}/", f"{UI}/runs/{run_id}", f"{UI}/login"):
        page = await web.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        loaded = re.findall(r"""(?:src|href|action)=["']([^"'#]+)["']""", page.text)
        assert loaded and not [u for u in loaded if u.startswith(("http:", "https:", "//"))]
        for url in loaded:
            if "/static/" in url:
                assert (await web.get(url)).status_code == 200, url


@pytest.mark.torch
async def test_a_retried_run_shows_its_attempts_curves_checkpoints_and_deliveries(
    platform: Platform,
) -> None:
    await retried_run(platform, hyperparameters=hyperparameters(epochs=6))
    web = await signed_in(platform)
    listing = await web.get(f"{UI}/")
    row = re.search(r'<tr data-run="job">(.*?)</tr>', listing.text, re.S)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row[1], re.S)
    assert "completed" in cells[0] and cells[1].strip() == "3/3" and cells[2].strip() == "6/6"
    run = await platform.story.run("job")
    page = (await web.get(f"{UI}/runs/{run['id']}")).text
    outcomes = re.findall(r'class="attempt" data-attempt="(\d)" data-outcome="(\w+)"', page)
    assert outcomes == [("1", "timed_out"), ("2", "timed_out"), ("3", "completed")]
    assert len(re.findall(r'class="deadline"', page)) == 3
    resumes = re.findall(r'class="resume" data-attempt="(\d)"', page)
    assert resumes == ["2", "3"]
    points = re.findall(r'class="curve curve-(train|val)" data-points="(\d+)"', page)
    assert sorted(points) == [("train", "6"), ("val", "6")]
    assert "Checkpoints (6)" in page and "epoch-0006" in page
    assert "Deployments</h2>" in page and "None." in page
    # Its parameters and final metrics, losses to six significant digits.
    pairs = dict(re.findall(r"<div><dt>(\w+)</dt><dd>(.*?)</dd></div>", page))
    assert (pairs["timeout"], pairs["max_attempts"], pairs["epochs"]) == ("3600", "3", "6")
    shown = html.unescape(pairs["optimizer_config"])
    assert shown == '{"type": "Adam", "default_params": {"lr": 0.02}}'
    assert pairs["epochs_completed"] == "6"
    assert pairs["final_val_loss"] == f"{run['metrics']['final_val_loss']:.6g}"


@pytest.mark.torch
async def test_deliveries_and_deployments_are_listed(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    await platform.story.submit(
        "hooked",
        dataset_id=dataset,
        parameters={"hyperparameters": hyperparameters(epochs=2)},
        webhook_url="http://127.0.0.1:9/hook",  # nobody listens: deliveries stay pending
    )
    await platform.advance(86400)
    run = await platform.story.run("hooked")
    assert run["status"] == "completed"
    deployed = await platform.client.post(
        f"{platform.project}/experiment_runs/{run['id']}/deployments",
        json={"deployment_name": "model-a", "version": "v1.0.0", "checkpoint_name": "epoch-0002"},
    )
    assert deployed.status_code in (200, 201), deployed.text
    page = (await (await signed_in(platform)).get(f"{UI}/runs/{run['id']}")).text
    section = page.split("Webhook deliveries", 1)[1].split("Checkpoints", 1)[0]
    assert "run.created" in section and "Connection refused" in section and "pending" in section
    assert "model-a" in page and "v1.0.0" in page


async def test_the_clock_controls_advance_step_settle_and_switch(platform: Platform) -> None:
    web = await signed_in(platform)
    back = f"{UI}/?project={platform.project_id}"
    answer = await web.post(
        f"{UI}/clock", data={"action": "advance", "duration": "1d", "next": back}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"{back}&notice=Advanced%20by%201d."
    assert (await platform.story.clock())["now"] == "2026-01-02T00:00:00Z"
    page = await web.get(answer.headers["location"])
    assert "Advanced by 1d." in page.text and "2026-01-02T00:00:00Z" in page.text
    assert 'name="next" value="/_emulator/ui/?project=' in page.text
    assert "notice=" not in re.search(r'name="next" value="([^"]*)"', page.text)[1]

    json_ = {"Accept": "application/json"}
    nothing = await web.post(f"{UI}/clock", data={"action": "next"}, headers=json_)
    assert nothing.status_code == 422 and "no next event" in nothing.json()["detail"]
    bad = await web.post(
        f"{UI}/clock", data={"action": "advance", "duration": "soon"}, headers=json_
    )
    assert bad.status_code == 422 and bad.json()["detail"].startswith("duration: 'soon'")
    dataset = await platform.dataset_id()
    await platform.story.submit(
        "job", dataset_id=dataset, parameters={"hyperparameters": hyperparameters(epochs=2)}
    )
    stepped = await web.post(f"{UI}/clock", data={"action": "next"}, headers=json_)
    assert stepped.status_code == 200 and stepped.json()["message"] == "Advanced to the next event."
    settled = await web.post(f"{UI}/clock", data={"action": "settle"}, headers=json_)
    assert settled.json()["settled"] is True
    switched = await web.post(f"{UI}/clock", data={"action": "mode", "mode": "realtime"})
    assert "notice=The%20clock%20is%20now%20realtime." in switched.headers["location"]
    refused = await web.post(f"{UI}/clock", data={"action": "advance"}, headers=json_)
    assert refused.status_code == 409 and "realtime" in refused.json()["detail"]


@pytest.mark.parametrize("origin", ["https://elsewhere.test", "null"])
async def test_cross_origin_posts_are_refused(platform: Platform, origin: str) -> None:
    web = await signed_in(platform)
    answer = await web.post(
        f"{UI}/clock", data={"action": "advance", "duration": "4d"}, headers={"Origin": origin}
    )
    assert answer.status_code == 403 and "Cross-origin" in answer.json()["detail"]
    assert (await platform.story.clock())["now"] == "2026-01-01T00:00:00Z"
    same = await web.post(
        f"{UI}/clock",
        data={"action": "advance", "duration": "1h"},
        headers={"Origin": "http://testserver"},
    )
    assert same.status_code == 303


async def test_a_run_page_shows_the_runs_notes(platform: Platform) -> None:
    dataset = await platform.dataset_id()
    parameters = {"hyperparameters": hyperparameters(), "gpu_type": "T4"}
    run = await platform.story.submit("on-t4", dataset_id=dataset, parameters=parameters)
    page = (await (await signed_in(platform)).get(f"{UI}/runs/{run['id']}")).text
    note = "trained on CPU: the emulator has no GPU; the platform would use the T4"
    assert f'<p class="notice">{note}</p>' in page


async def test_an_unknown_run_is_a_clear_404(platform: Platform) -> None:
    answer = await (await signed_in(platform)).get(f"{UI}/runs/nope")
    assert answer.status_code == 404 and "nope" in answer.json()["detail"]


def a_run(status: str, runtime_seconds: float, limit: float, **fields: Any) -> dict[str, Any]:
    """A run as the API returns it, with what its figure reads."""
    return {
        "name": "r",
        "status": status,
        "created_at": "2026-01-01T00:00:00Z",
        "runtime_seconds": runtime_seconds,
        "runtime_limit_seconds": limit,
        "metrics": {},
        "attempts": [],
        **fields,
    }


def an_attempt(
    started: str, ended: str | None, deadline: str, outcome: str | None, epochs: int
) -> dict[str, Any]:
    return {
        "number": 1,
        "started_at": started,
        "ended_at": ended,
        "deadline": deadline,
        "outcome": outcome,
        "resumed_from_epoch": 0,
        "epochs_completed": epochs,
    }


def test_the_figure_of_a_running_attempt_reaches_to_the_present() -> None:
    run = a_run(
        "running",
        5400,
        4 * 86400,
        metrics={"train_loss_history": [2.0, "nan", 1.0], "val_loss_history": [2.5]},
        attempts=[an_attempt("2026-01-01T00:30:00Z", None, "2026-01-02T00:30:00Z", None, epochs=3)],
    )
    figure = run_figure(run, "2026-01-01T02:00:00Z")
    (span,) = figure.spans
    assert (span.start, span.end, span.deadline) == (0.5, 2.0, 24.5)
    assert figure.axis_end == pytest.approx(24.5 * 1.02)  # the running attempt's deadline
    drawn = timeline(figure)
    assert 'data-outcome="running"' in drawn and 'class="now"' in drawn
    curves = losses(figure)
    # The NaN epoch breaks the training curve: two single points, drawn as dots.
    assert curves.count('class="curve curve-train"') == 2 and "<circle" in curves


def test_a_run_that_failed_before_its_first_epoch_draws_no_axes_and_says_why() -> None:
    at = "2026-01-01T00:00:05Z"
    crashed = an_attempt(at, at, "2026-01-01T01:00:05Z", "crashed", epochs=0)
    run = a_run("failed", 5, 3600, attempts=[crashed])
    curves = losses(run_figure(run, "2026-01-01T00:00:05Z"))
    assert "No epoch finished: no losses to draw." in curves
    assert "tick-label" not in curves and "<line" not in curves and "legend" not in curves


def test_the_loss_legend_sits_above_the_plot() -> None:
    histories = {"train_loss_history": [2.0, 1.0], "val_loss_history": [2.5, 1.5]}
    run = a_run("completed", 60, 3600, metrics=histories)
    curves = losses(run_figure(run, "2026-01-01T00:01:00Z"))
    legend_rows = {float(y) for y in re.findall(r'class="legend" x="[\d.]+" y="([\d.]+)"', curves)}
    axis = re.search(r'<line x1="(\d+)" x2="\1" y1="([\d.]+)"', curves)  # the vertical axis
    assert axis is not None
    assert len(legend_rows) == 1 and max(legend_rows) < float(axis[2])  # above the plot


def test_serve_prints_a_dashboard_link_that_signs_a_browser_in(tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable, "-m", "qcog_mock.mockserver.cli", "serve", "--port", str(port),
        "--data-dir", str(tmp_path), "--clock", "manual", "--log-level", "info",
    ]  # fmt: skip
    serve = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None and serve.stderr is not None
        link = ""
        for line in serve.stdout:  # what serve prints before it starts listening
            if line.startswith("  dashboard: "):
                link = line.split("dashboard: ", 1)[1].strip()
                break
        assert link.startswith(f"http://127.0.0.1:{port}{UI}/login?token=")
        for line in serve.stderr:  # uvicorn says when it is ready
            if "Uvicorn running on" in line:
                break
        with httpx.Client() as web:
            page = web.get(link, follow_redirects=True)
            assert page.status_code == 200 and "Runs of qcog-mock" in page.text
            assert web.get(f"{link}x").status_code == 401  # any other token is refused
    finally:
        serve.kill()
        serve.wait()
