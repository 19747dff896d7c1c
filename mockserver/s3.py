"""S3 references: ``s3://bucket/key`` checked, and read from ``serve --s3-root DIR`` when given.

The emulator is offline: without ``--s3-root`` it stores the reference, as the platform does,
and a run on it fails at once saying why. With it, ``s3://bucket/key`` is ``DIR/bucket/key``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from qcog_mock.mockserver.errors import Forbidden, Invalid, NotFound

if TYPE_CHECKING:
    from qcog_mock.mockserver.documents import Dataset

# S3's bucket naming rules, the common part: 3–63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

NO_ACCESS = "the emulator has no S3 access: upload the file, or serve with --s3-root DIR"


def no_access(dataset: Dataset) -> str:
    """Why a run or an inference cannot read ``dataset``, an S3 reference."""
    location = dataset.configuration.get("dataset_location")
    return f"dataset '{dataset.name}' is at {location}: {NO_ACCESS}"


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def parse(location: str, field: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``s3://bucket/key`` URL; a 422 naming ``field`` otherwise."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    if not _BUCKET.fullmatch(bucket) or not key or key.endswith("/"):
        raise Invalid(
            f"{field}: '{location}' is not an S3 object URL; give it as s3://bucket/key "
            "(a bucket of 3–63 lowercase letters, digits, dots or hyphens, and an object key)."
        )
    return bucket, key


def local_object(root: Path, location: str, field: str) -> Path:
    """The file ``--s3-root`` holds for ``location``; never one outside ``root``."""
    bucket, key = parse(location, field)
    base = root.resolve()
    path = (base / bucket / key).resolve()
    if not path.is_relative_to(base / bucket):
        raise Forbidden(f"{field}: '{location}' names a key outside its bucket.")
    if not path.is_file():
        raise NotFound("S3 object", location, by="location")
    return path
