"""Real-browser tests: Playwright driving the system's Chromium (never a downloaded browser).

They skip, saying why, where Playwright or Chromium is absent; `make tools` installs Debian's
chromium (as root). Screenshots land in ``test-artifacts/`` (or ``$QCOG_MOCK_ARTIFACTS``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qcog_mock.mockserver.platform import Platform
from qcog_mock.mockserver.settings import Settings
from qcog_mock.mockserver.testing.plugin import QcogPlatform
from qcog_mock.mockserver.testing.story import Story
from tests.mockserver.helpers import KEY, dataset_csv, hyperparameters

REPO = Path(__file__).resolve().parents[2]
UI = "/_emulator/ui"
# As root, Chromium needs --no-sandbox; the rest keep it from calling out at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def chromium_path() -> str | None:
    explicit = os.environ.get("QCOG_MOCK_CHROMIUM")
    return explicit or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = Path(os.environ.get("QCOG_MOCK_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Per test: Playwright's sync API keeps an event loop running while it is open, which the
# asyncio tests of other modules in the same process must not find.
@pytest.fixture
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
    )
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: `make tools` installs Debian's (as root)")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Server:
    """An emulator over real HTTP on a manual clock, with what a browser saw of it."""

    url: str
    platform: Platform
    token: str
    console_errors: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)

    def story(self, steps: Any) -> Any:
        """Run ``steps(story)`` (a coroutine function) against the server, in a thread of its
        own: Playwright's sync API keeps an event loop running in this one."""

        async def go() -> Any:
            async with Story.connect(f"{self.url}/api", KEY) as story:
                return await steps(story)

        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, go()).result()

    def watch(self, page: Any) -> Any:
        """Record the page's console errors, uncaught errors and requests to anywhere else."""
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        local = (self.url, "data:", "blob:", "about:")
        page.on("request", lambda r: r.url.startswith(local) or self.elsewhere.append(r.url))
        return page


@pytest.fixture
def server() -> Iterator[Server]:
    with QcogPlatform.socket(Settings(api_key=KEY, clock="manual")) as environment:
        assert environment.backend is not None and environment.dashboard_token is not None
        root = environment.base_url.removesuffix("/api")
        yield Server(root, environment.backend, environment.dashboard_token)


async def submit(story: Story, name: str = "job", retries: int = 2, **params: Any) -> None:
    """A 6-epoch run whose 1-hour attempts each fit two 1,500 s epochs: with ``retries`` 2 it
    completes in its third attempt, after two timeouts."""
    await story.upload("data", dataset_csv())
    await story.submit(
        name,
        "data",
        {
            "hyperparameters": hyperparameters(epochs=6),
            "timeout": 3600,
            "retries": retries,
            "emulator": {"epoch_seconds": 1500},
            **params,
        },
    )


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """A signed-in page at 1280×800 (through the token URL ``serve`` prints)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = server.watch(context.new_page())
    tab.goto(f"{server.url}{UI}/login?token={server.token}")
    yield tab
    context.close()
