"""Keep freed memory in the process, so repeated large tensors do not page-fault.

glibc hands large freed blocks back to the kernel (mmap threshold, heap trimming). Every 5 s
utterance then touches ~20 MB of fresh pages again: about 5,000 minor page faults per forward
pass of the paper network, which took it from ~16 ms to ~26 ms on the 2-core development CPU
(bench/inference.py). Raising both thresholds keeps the pages mapped for reuse; the price is a
resident set that stays at its peak (~20 MB more for inference). PyTorch's CPU tuning guide
gives the same advice in the form of jemalloc or tcmalloc; this needs no extra library.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
RETAINED_BYTES = 1 << 30


def retain_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 1 GiB mapped; False where that is not possible.

    Process-wide and idempotent. Without glibc (musl, macOS, Windows) nothing changes.
    """
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, RETAINED_BYTES)
                and mallopt(M_TRIM_THRESHOLD, RETAINED_BYTES))
