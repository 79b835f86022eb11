"""Process-level settings for fast CPU inference.

Why: a diffusion vocoder allocates several (channels x samples) float tensors per
layer and step. glibc serves allocations above its mmap threshold (at most 32 MB)
with fresh mmaps, so every such tensor is page-faulted in and unmapped again
(docs/speed.md). Serving them from the heap and keeping freed memory there
removes that cost.

It changes the whole process, so only the project's command-line tools (specgrad_plugin.bin)
call it; a library user opts in by calling ``tune_cpu_allocator()`` once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger("specgrad_plugin")

ALLOCATOR_ENV = "SPECGRAD_MALLOC"  # "default" leaves glibc's malloc settings alone
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
_TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of freed memory for reuse
_tuned = False


def tune_cpu_allocator() -> bool:
    """Make glibc serve large tensors from its heap (no per-tensor mmap/munmap).

    Process-wide and idempotent; a no-op off glibc or when $SPECGRAD_MALLOC=default.
    Returns whether the settings are in effect. Cost: up to 1 GiB of freed memory
    stays reserved by the process instead of going back to the system at once.
    """
    global _tuned
    if _tuned:
        return True
    if os.environ.get(ALLOCATOR_ENV, "") == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    _tuned = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    if _tuned:
        log.debug("glibc malloc: mmap off, trim threshold %d", _TRIM_THRESHOLD)
    return _tuned
