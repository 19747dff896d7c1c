"""An async client with the same Python API as the platform's ``qcogclient``, on httpx.

    from qcog_mock.client import ExperimentClient      # or: from qcogclient import ExperimentClient

``AdminClient``, ``ProjectClient`` and ``ExperimentClient`` keep the real classes' method names,
signatures and ``{"response": …}`` / ``{"error": …}`` envelopes; what the real client raises
(an unreachable server, a ``str`` path, a DataFrame upload) raises here too. ``transport=``
reaches httpx, so tests can run the app in process (``httpx.ASGITransport``).
``EmulatorClient`` and ``wait_for_run`` are qcog-mock extensions.
"""

from qcog_mock.client._admin import AdminClient
from qcog_mock.client._base import Initializer, is_error
from qcog_mock.client._emulator import (
    EmulatorClient,
    EmulatorError,
    QcogMockError,
    RunWaitError,
    wait_for_run,
)
from qcog_mock.client._experiment import Criterion, ExperimentClient, ExperimentRunParameters
from qcog_mock.client._http import ClientConnectorError, DictResponse, HttpClient, get_base_url
from qcog_mock.client._project import ProjectClient

__all__ = [
    "AdminClient",
    "ClientConnectorError",
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
