"""/docs and /redoc in Chromium, offline: the operations are listed and no request leaves the
machine (every asset comes from the emulator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Server


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/docs", ".opblock"),  # Swagger UI: one block per operation
        ("/redoc", "li[data-item-id^='tag/']"),  # ReDoc: the menu's groups
    ],
)
def test_docs_pages_list_the_operations_from_local_assets_only(
    browser: Any, server: Server, artifacts: Path, path: str, operation: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = server.watch(context.new_page())
    page.goto(f"{server.url}{path}")
    found = page.locator(operation)
    expect(found.first).to_be_visible(timeout=20_000)
    assert found.count() >= 5
    expect(page.get_by_text("experiment_runs").first).to_be_attached()
    page.screenshot(path=artifacts / f"{path.strip('/')}.png")
    assert server.elsewhere == []
    assert server.console_errors == []
    context.close()
