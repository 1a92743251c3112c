"""A serving process caps glibc's malloc arenas, unless its operator chose a cap."""

import ctypes.util
import os
import subprocess
import sys

import pytest

from c4c_site.malloc import SERVING_ARENAS

# Arenas are glibc's: with another C library (musl) there is nothing to cap, and limit_arenas()
# leaves the process as it is.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (ctypes.util.find_library("c") or "").startswith("libc.so"), reason="glibc only"
    ),
]

# Eight threads allocate at once and hold it; glibc's malloc_stats() then lists one "Arena N:"
# block per arena on stderr.
_THREADS_ALLOCATE = """
import ctypes, sys, threading
from c4c_site.malloc import limit_arenas
print(limit_arenas())
barrier = threading.Barrier(8)
held = []
def allocate():
    held.append([bytearray(64 * 1024) for _ in range(4)])
    barrier.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
sys.stdout.flush()
ctypes.CDLL(None).malloc_stats()
"""


def _arenas(env: dict[str, str]) -> tuple[str, int]:
    """What limit_arenas() answered and the arenas glibc counted, in a process run under this
    environment (a variable set to "" is left out of it)."""
    result = subprocess.run(
        [sys.executable, "-c", _THREADS_ALLOCATE],
        env={k: v for k, v in {**os.environ, **env}.items() if v},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip(), result.stderr.count("Arena ")


def test_threads_of_a_serving_process_share_two_arenas() -> None:
    assert _arenas({"MALLOC_ARENA_MAX": "", "GLIBC_TUNABLES": ""}) == ("True", SERVING_ARENAS)


def test_the_operators_malloc_arena_max_wins() -> None:
    taken, arenas = _arenas({"MALLOC_ARENA_MAX": "16", "GLIBC_TUNABLES": ""})
    assert taken == "False"
    assert arenas > SERVING_ARENAS
