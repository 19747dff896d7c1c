"""An async client with the same Python API as the platform's ``qcogclient``, on httpx.

    from client import ExperimentClient      # or: from qcogclient import ExperimentClient

``AdminClient``, ``ProjectClient`` and ``ExperimentClient`` keep the real classes' method names,
signatures and ``{"response": …}`` / ``{"error": …}`` envelopes. ``transport=`` reaches httpx, so
tests can run the app in process (``httpx.ASGITransport``). ``EmulatorClient`` and
``wait_for_run`` are qcog-mock extensions.
"""

from client._admin import AdminClient, Initializer, is_error
from client._emulator import (
    EmulatorClient,
    EmulatorError,
    QcogMockError,
    RunWaitError,
    wait_for_run,
)
from client._experiment import Criterion, ExperimentClient, ExperimentRunParameters
from client._http import DictResponse, HttpClient, get_base_url
from client._project import ProjectClient

__all__ = [
    "AdminClient",
    "Criterion",
    "DictResponse",
    "EmulatorClient",
    "EmulatorError",
    "ExperimentClient",
    "ExperimentRunParameters",
    "HttpClient",
    "Initializer",
    "ProjectClient",
    "QcogMockError",
    "RunWaitError",
    "get_base_url",
    "is_error",
    "wait_for_run",
]
