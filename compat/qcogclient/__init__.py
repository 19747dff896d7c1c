"""``qcogclient``, provided by qcog-mock's ``client``: platform code imports it unchanged."""

from qcog_mock.client import AdminClient, ExperimentClient, ProjectClient

__all__ = ["AdminClient", "ExperimentClient", "ProjectClient"]
