"""JSON as the emulator writes it for others: strict, and never failing on what it stores.

A diverging run's losses are NaN or infinite; JSON has no such numbers. The platform's
pydantic models write them as ``null`` (pydantic's default for non-finite floats), and so does
the emulator, in API answers and webhook bodies alike: never ``NaN``/``Infinity`` tokens that
strict parsers refuse, never a 500. The stored values stay as they are (the dashboard shows
them as "diverged").
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by ``None``, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON text of ``value``; non-finite numbers become ``null``.

    Text that cannot be encoded as UTF-8 (a lone surrogate in a record written before such
    input was refused) is escaped as ``\\udfff`` rather than failing the read.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, **options)
    except ValueError:  # a non-finite number, found only when there is one
        text = json.dumps(finite(value), allow_nan=False, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(finite(value), allow_nan=False, ensure_ascii=True, **options)
    return text
