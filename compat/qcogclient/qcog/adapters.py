"""``qcogclient.qcog.adapters``, provided by qcog-mock's ``client``."""

from qcog_mock.client.adapters import CsvFile, load_csv, load_dataframe

__all__ = ["CsvFile", "load_csv", "load_dataframe"]
