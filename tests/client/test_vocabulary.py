"""The client may not import the server, so it keeps copies of a few of the server's words;
each is pinned here to the server's one definition."""

from __future__ import annotations

import typing
from urllib.parse import urlsplit

from qcog_mock.client import _emulator, _http
from qcog_mock.client._emulator import EmulatorClient
from qcog_mock.mockserver import clock, documents, settings


def test_the_clients_copies_are_the_servers_words() -> None:
    assert _emulator.TERMINAL == documents.TERMINAL
    assert _emulator.TIME_HEADER == clock.TIME_HEADER
    modes = typing.get_type_hints(EmulatorClient.set_mode)["mode"]
    assert typing.get_args(modes) == clock.CLOCK_MODES
    for environment in ("DEV", "STAGING"):
        assert urlsplit(_http.BASE_URLS[environment]).port == settings.DEFAULT_PORT
