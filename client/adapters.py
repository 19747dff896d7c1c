"""What the real client's ``qcogclient.qcog.adapters`` offers the dataset-management page: a CSV
file or a DataFrame as the stream ``upload_dataset`` takes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, TypedDict

__all__ = ["CsvFile", "load_csv", "load_dataframe"]


class CsvFile(TypedDict):
    file: IO[bytes]
    number_of_columns: int
    number_of_rows: int


def load_csv(path: str | Path, *, chunk_size: int = 1024 * 1024) -> CsvFile:
    """The CSV at ``path`` as a stream, with its counts as the real adapter gives them: every
    line is a row (the header too), and the columns are the first line split on commas."""
    data = bytearray()
    with open(path, "rb") as source:
        while chunk := source.read(chunk_size):
            data += chunk
    stream = io.BytesIO(bytes(data))
    stream.name = Path(path).name
    lines = bytes(data).splitlines()
    columns = len(lines[0].split(b",")) if lines else 0
    return {"file": stream, "number_of_columns": columns, "number_of_rows": len(lines)}


def load_dataframe(frame: Any, *, index: bool = False) -> IO[bytes]:
    """A DataFrame as a CSV byte stream (``upload_dataset`` takes it; the frame itself it
    refuses, as the real client does)."""
    stream = io.BytesIO(frame.to_csv(index=index).encode())
    stream.name = "dataframe.csv"
    return stream
