"""``qcogclient.qcog.typ``: the response type and its test."""

from qcog_mock.client import DictResponse, is_error

__all__ = ["DictResponse", "is_error"]
