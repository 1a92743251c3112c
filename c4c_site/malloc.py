"""Fewer malloc arenas in a serving process.

glibc gives each thread that allocates its own arena, up to eight per core, and an arena keeps
the memory it once held. A serving process runs many threads (runs, procedures, Django's sync
views), so after a burst of load most of what it holds in excess sits in arenas of threads that
are idle (BENCHMARKS.md, "Issue 8 against the tree it was filed on"). Two arenas keep that down
at no measured cost in throughput: the threads share one GIL, so they rarely allocate at once.
An operator's own MALLOC_ARENA_MAX or glibc.malloc.arena_max tunable wins.
"""

import ctypes
import os

# mallopt's parameter number for the arena limit (glibc's malloc.h).
M_ARENA_MAX = -8
SERVING_ARENAS = 2


def limit_arenas() -> bool:
    """Cap the arenas threads started from now on may create; True if the C library took it.

    Call it before the process starts threads: one that has allocated keeps its arena.
    """
    if os.environ.get("MALLOC_ARENA_MAX") or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, SERVING_ARENAS))
