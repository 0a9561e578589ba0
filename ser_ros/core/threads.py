"""How many CPU threads the network and the numerical libraries under the front end use."""

from __future__ import annotations

import torch
from threadpoolctl import threadpool_limits


def limit_cpu_threads(count: int) -> None:
    """Run torch's intra-op pool and numpy's / scipy's BLAS on ``count`` threads; 0 leaves them.

    Process-wide. The BLAS matters as much as torch: OpenBLAS starts one thread per core and
    they busy-wait after every call, so the front end's single mel matrix product per
    utterance kept both cores of the 2-core development machine busy (and took 3.1 ms instead
    of 2.6), taking the second core from the VAD and the executor. Libraries loaded after the
    call keep their defaults: call it once the front end's modules are imported.
    """
    if count < 0:
        raise ValueError(f'thread count must be >= 0, got {count}')
    if count:
        torch.set_num_threads(count)
        threadpool_limits(count, user_api='blas')
