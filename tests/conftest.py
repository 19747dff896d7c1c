from fnmatch import fnmatch
from pathlib import Path

import anyio._backends._asyncio  # noqa: F401  (see below)
import httpcore  # noqa: F401
import pytest

pytest_plugins = ["pytester"]

# pytester's in-process runs drop every module first imported during them. httpx imports
# httpcore lazily and keeps the exception classes it first saw: had httpcore been first
# imported inside such a run, every later connection error would escape httpx's mapping (a
# test that runs after one in whatever order). Imported here, they outlive any such run.

# Modules that import torch as they load: not collected where torch is not installed (the 3.12
# and 3.13 sessions of noxfile.py, which also deselect the tests marked `torch`).
NEED_TORCH_TO_LOAD = ["trainer/*", "mockserver/test_deployments.py", "mockserver/test_demo.py"]

try:
    import torch
except ModuleNotFoundError:
    collect_ignore_glob = NEED_TORCH_TO_LOAD
else:
    # One intra-op thread: deterministic reductions and no contention with the second core.
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Marked `torch` besides the tests marked one by one: those of the modules above, and the
    # example scenarios (collected by the plugin from scenarios/), which all train.
    tests, scenarios = Path(__file__).parent, config.rootpath / "scenarios"
    for item in items:
        path = item.path
        loads_torch = path.is_relative_to(tests) and any(
            fnmatch(str(path.relative_to(tests)), pattern) for pattern in NEED_TORCH_TO_LOAD
        )
        if loads_torch or path.is_relative_to(scenarios):
            item.add_marker(pytest.mark.torch)


def pytest_report_header() -> str | None:
    if "torch" in globals():
        return None
    return "torch is not installed: not collected: " + ", ".join(NEED_TORCH_TO_LOAD)
