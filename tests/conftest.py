import anyio._backends._asyncio  # noqa: F401  (see below)
import httpcore  # noqa: F401
import torch

pytest_plugins = ["pytester"]

# pytester's in-process runs drop every module first imported during them. httpx imports
# httpcore lazily and keeps the exception classes it first saw: had httpcore been first
# imported inside such a run, every later connection error would escape httpx's mapping (a
# test that runs after one in whatever order). Imported here, they outlive any such run.

# One intra-op thread: deterministic reductions and no contention with the second core.
torch.set_num_threads(1)
