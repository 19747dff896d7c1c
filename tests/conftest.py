import torch

pytest_plugins = ["pytester"]

# One intra-op thread: deterministic reductions and no contention with the second core.
torch.set_num_threads(1)
