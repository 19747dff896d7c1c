"""Stand-ins for the platform's ``qcogclient`` and ``qcog_types``, active only when asked.

The folder holding this file is the stand-ins' import root. It is never on ``sys.path`` by
itself, so installing qcog-mock never shadows a real ``qcogclient``; ``activate`` puts it there:

    from qcog_mock.compat import activate; activate()   # "auto": real packages win

- ``auto``: each name not importable for real comes from the stand-in (the root is appended to
  ``sys.path``, after everything real);
- ``on``: the stand-ins win even over installed packages (the root goes first, and any real
  module already imported under those names is forgotten);
- ``off``: the stand-ins are taken away again.

The pytest plugin calls it from the ``qcog_compat`` ini option and ``qcog-mock exec`` from its
``--compat`` flag. Light: imports only the standard library.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CompatMode = Literal["auto", "on", "off"]
COMPAT_MODES: tuple[CompatMode, ...] = ("auto", "on", "off")
NAMES = ("qcogclient", "qcog_types")
# Where the stand-ins knowingly differ from the real packages; everything else a user's code can
# observe matches them, bugs included. The README's Fidelity section quotes these lines, and
# tests/fidelity runs one script through the stand-ins that shows each of them, and no other.
KEPT_DIFFERENCES: dict[str, str] = {
    "target": (
        "qcog_types takes the guides' target= as targets= with a UserWarning; the real package "
        "refuses it (targets Field required). So the guides run verbatim."
    ),
    "default-env": (
        "with QCOG_ENV unset the client goes to http://localhost:8001/api; the real one goes to "
        "its staging host, and a test would reach the internet."
    ),
    "connection-error": (
        "an unreachable server raises qcog_mock.client.ClientConnectorError, a ConnectionError; "
        "the real client raises aiohttp's class of that name, an OSError too (catch OSError)."
    ),
    "delete-run": (
        "delete_experiment_run(run_name) deletes that run; the real one deletes the selected run "
        "whatever the name, a bug no test should depend on."
    ),
}

SHIM_ROOT = str(Path(__file__).resolve().parent)


@dataclass(frozen=True)
class Provider:
    """Where ``import name`` goes: the real package, the stand-in, or nowhere."""

    name: str
    source: Literal["real", "shim", "missing"]
    path: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.source == "real":
            return f"{self.name} {self.version or '(version unknown)'} (real, {self.path})"
        if self.source == "shim":
            return f"{self.name}: qcog-mock's stand-in ({self.path})"
        return f"{self.name}: not installed (qcog_compat = off)"


def _in_shim(path: str | None) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(SHIM_ROOT)


def provider(name: str) -> Provider:
    """Which package ``import name`` gives now (without importing it if it is not yet)."""
    module = sys.modules.get(name)
    if module is not None:
        origin = getattr(module, "__file__", None)
    else:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            return Provider(name, "missing")
        origin = spec.origin
    if _in_shim(origin):
        return Provider(name, "shim", str(Path(SHIM_ROOT) / name))
    from importlib import metadata  # here: every `qcog-mock` command imports this module

    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        version = None
    path = str(Path(origin).parent) if origin else None
    return Provider(name, "real", path, version)


def _real_available(name: str) -> bool:
    """Whether ``name`` is importable without the stand-ins' root."""
    if SHIM_ROOT not in sys.path:
        return provider(name).source == "real"
    sys.path.remove(SHIM_ROOT)
    try:
        importlib.invalidate_caches()
        return provider(name).source == "real"
    finally:
        sys.path.append(SHIM_ROOT)


def _forget(names: tuple[str, ...], keep: Literal["real", "shim"]) -> None:
    """Drop imported modules under ``names`` that are not from the wanted side."""
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] in names:
            from_shim = _in_shim(getattr(module, "__file__", None))
            if from_shim != (keep == "shim"):
                del sys.modules[module_name]


def activate(mode: str = "auto") -> list[Provider]:
    """Make ``import qcogclient`` / ``import qcog_types`` follow ``mode``; returns who provides
    each. A wrong mode is a ``ValueError`` naming the choices."""
    if mode not in COMPAT_MODES:
        raise ValueError(f"qcog_compat must be one of {', '.join(COMPAT_MODES)}, not {mode!r}")
    while SHIM_ROOT in sys.path:
        sys.path.remove(SHIM_ROOT)
    importlib.invalidate_caches()
    if mode == "on":
        sys.path.insert(0, SHIM_ROOT)
        _forget(NAMES, keep="shim")
    elif mode == "auto":
        if not all(provider(name).source == "real" for name in NAMES):
            sys.path.append(SHIM_ROOT)
    else:
        _forget(NAMES, keep="real")
    importlib.invalidate_caches()
    return [provider(name) for name in NAMES]


def pythonpath_for(mode: str, current: str | None) -> str | None:
    """``PYTHONPATH`` for a child process that should see the stand-ins as ``mode`` says
    (``auto`` decides with this interpreter's packages)."""
    if mode not in COMPAT_MODES:
        raise ValueError(f"--compat must be one of {', '.join(COMPAT_MODES)}, not {mode!r}")
    entries = [entry for entry in (current or "").split(":") if entry and entry != SHIM_ROOT]
    # PYTHONPATH precedes site-packages, so "auto" adds the stand-ins only where no real
    # package would be hidden by them.
    if mode == "on" or (mode == "auto" and not any(_real_available(n) for n in NAMES)):
        entries.insert(0, SHIM_ROOT)
    return ":".join(entries) or None


__all__ = [
    "COMPAT_MODES",
    "NAMES",
    "SHIM_ROOT",
    "Provider",
    "activate",
    "provider",
    "pythonpath_for",
]
