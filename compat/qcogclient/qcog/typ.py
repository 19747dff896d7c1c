"""``qcogclient.qcog.typ``: the response type and its test."""

from client import DictResponse, is_error

__all__ = ["DictResponse", "is_error"]
