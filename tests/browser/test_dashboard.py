"""The dashboard in Chromium: it loads clean, shows a retried run, follows the clock live, and
works from the keyboard at desktop and phone widths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import UI, Server, submit

NOW = ".clock-now"


def advance(server: Server, seconds: float) -> None:
    server.platform.control.advance(seconds)


def test_signing_in_by_the_form_and_loading_with_no_console_errors(
    browser: Any, server: Server, artifacts: Path
) -> None:
    server.story(submit)
    advance(server, 3 * 3600)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = server.watch(context.new_page())
    page.goto(f"{server.url}{UI}/")
    expect(page).to_have_url(re.compile(r"/_emulator/ui/login\?next="))
    page.get_by_label("Admin name").fill("admin")
    page.get_by_label("Password").fill("admin")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Runs of qcog-mock")).to_be_visible()
    page.get_by_role("link", name="job").click()
    expect(page.locator("svg.chart-timeline")).to_be_visible()
    page.wait_for_timeout(1500)  # a live refresh or two: they must not error either
    page.screenshot(path=artifacts / "dashboard-run.png", full_page=True)
    assert (artifacts / "dashboard-run.png").stat().st_size > 10_000
    assert server.console_errors == [] and server.elsewhere == []
    context.close()


@pytest.mark.torch
def test_a_completed_retried_run_shows_its_attempts_and_curves(
    page: Any, server: Server, artifacts: Path
) -> None:
    server.story(submit)
    advance(server, 3 * 3600)
    page.get_by_role("link", name="job").click()
    bars = page.locator("svg.chart-timeline rect.attempt")
    expect(bars).to_have_count(3)
    outcomes = [bars.nth(i).get_attribute("data-outcome") for i in range(3)]
    assert outcomes == ["timed_out", "timed_out", "completed"]
    widths = [bars.nth(i).bounding_box()["width"] for i in range(3)]
    assert all(w > 50 for w in widths), widths  # drawn to scale, not slivers
    expect(page.locator("svg.chart-losses polyline.curve-train")).to_have_attribute(
        "data-points", "6"
    )
    expect(page.locator("svg.chart-losses polyline.curve-val")).to_be_visible()
    expect(page.locator("svg.chart-losses line.resume")).to_have_count(2)
    expect(page.locator("table.attempts tbody tr")).to_have_count(3)
    expect(page.get_by_role("heading", name="Checkpoints (6)")).to_be_visible()
    # What it was asked and what it achieved, beside the attempts.
    parameters = page.get_by_role("region", name="Parameters")
    expect(parameters.locator("dt", has_text="retries")).to_be_visible()
    expect(parameters.locator("dt", has_text="hilbert_space_dims")).to_be_visible()
    metrics = page.get_by_role("region", name="Metrics")
    expect(metrics.locator("dt", has_text="final_val_loss")).to_be_visible()
    expect(metrics.locator("dt", has_text="epochs_completed").locator("+ dd")).to_have_text("6")
    page.screenshot(path=artifacts / "dashboard-retried-run.png", full_page=True)
    assert server.console_errors == []


@pytest.mark.torch
def test_the_clock_control_advances_a_manual_clock_and_the_page_updates(
    page: Any, server: Server
) -> None:
    server.story(submit)
    row = page.locator('tr[data-run="job"]')
    expect(row.locator(".status")).to_have_text("pending")  # provisioning, on a manual clock
    expect(page.locator(NOW)).to_have_text("2026-01-01T00:00:00Z")
    page.evaluate("window.notReloaded = true")
    duration = page.get_by_label("Advance by")
    duration.fill("1d")
    duration.press("Enter")  # the form's first button: Advance
    expect(page.locator(NOW)).to_have_text("2026-01-02T00:00:00Z")
    expect(row.locator(".status")).to_have_text("completed")
    expect(page.locator("#clock-message")).to_contain_text("Advanced by 1d.")
    assert server.platform.control.clock_state().now == "2026-01-02T00:00:00Z"
    assert page.evaluate("window.notReloaded") is True  # updated in place
    assert server.console_errors == []
    duration.fill("next week")
    duration.press("Enter")  # a 422, shown beside the controls
    expect(page.locator("#clock-message")).to_have_text(
        "duration: 'next week' is not a duration such as 90s, 25m, 1h30m, 24h or 4d."
    )
    expect(page.locator(NOW)).to_have_text("2026-01-02T00:00:00Z")


@pytest.mark.torch
def test_the_page_follows_runs_as_they_progress_without_a_reload(page: Any, server: Server) -> None:
    expect(page.get_by_text("No runs in this project yet")).to_be_visible()
    page.evaluate("window.notReloaded = true")
    server.story(submit)  # submitted elsewhere: the page finds it by itself
    row = page.locator('tr[data-run="job"]')
    expect(row.locator(".status")).to_have_text("pending")  # provisioning, on a manual clock
    advance(server, 90 * 60)  # attempt 1 timed out, attempt 2 started
    expect(row.locator("td").nth(1)).to_have_text("2/3")
    advance(server, 2 * 3600)
    expect(row.locator(".status")).to_have_text("completed")
    expect(row.locator("td").nth(2)).to_have_text("6/6")
    assert page.evaluate("window.notReloaded") is True


def test_keyboard_alone_reaches_every_control_and_moves_the_clock(
    page: Any, server: Server
) -> None:
    server.story(submit)
    expect(page.get_by_role("link", name="job")).to_be_visible()  # the live refresh found it
    reached = []
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    for control in ("Skip to content", "Sign out", "Advance", "To the next event", "Settle"):
        assert control in reached, reached
    assert "Switch" in reached and "job" in reached, " | ".join(reached)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Shift+Tab")
    while page.evaluate("document.activeElement.textContent.trim()") != "To the next event":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#clock-message")).to_contain_text("Advanced to the next event.")
    assert server.platform.control.clock_state().now != "2026-01-01T00:00:00Z"


def test_readable_at_desktop_and_phone_widths(
    browser: Any, server: Server, artifacts: Path
) -> None:
    server.story(submit)
    advance(server, 3 * 3600)
    run_id = server.platform.runs.page(
        server.platform.identity.list_projects(1, 0)[0].id, None, 1, 0, descending=False
    )[0].id
    for name, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        page = server.watch(context.new_page())
        page.goto(f"{server.url}{UI}/login?token={server.token}&next={UI}/runs/{run_id}")
        expect(page.locator("svg.chart-timeline")).to_be_visible()
        # Wide content scrolls inside its own box: the page itself never scrolls sideways.
        overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, (name, overflow)
        # The charts fit the width too: drawn smaller, not scrolled inside their boxes.
        for chart in ("svg.chart-timeline", "svg.chart-losses"):
            box = page.locator(chart).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= size[0], (name, chart, box)
        expect(page.get_by_role("region", name="Metrics")).to_be_visible()
        if name == "desktop":  # the attempts table, reasons included, fits: nothing cut off
            wrap = page.locator("table.attempts").locator("xpath=..")
            assert wrap.evaluate("e => e.scrollWidth - e.clientWidth") <= 0
        font = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert font >= 14
        expect(page.get_by_role("button", name="Advance")).to_be_in_viewport()
        page.screenshot(path=artifacts / f"dashboard-{name}.png")
        context.close()
    assert server.console_errors == []
