"""The ``qcog-mock`` command: ``main.py`` parses and dispatches; one module per command group
(``serve``, ``console``, ``scenario``, ``demo`` with its ``picture``)."""

from qcog_mock.mockserver.cli.main import main

__all__ = ["main"]
