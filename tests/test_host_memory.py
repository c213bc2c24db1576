"""A CPU collect keeps freed memory mapped, so a batch's activations do not page-fault again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

#: page faults while touching a 16 MiB block, fresh then freed and allocated again
FAULTS = """
import resource, sys
import numpy as np
from zipfstage.collect.host_memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
def touched():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.empty(4 * 2**20, dtype=np.float32)
    block.fill(1.0)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(applied, touched(), touched())
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="tunes glibc"
)
def test_freed_blocks_stay_mapped_once_tuned() -> None:
    def faults(mode: str) -> tuple[str, int, int]:
        out = subprocess.run(
            [sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True
        ).stdout.split()
        return out[0], int(out[1]), int(out[2])

    applied, fresh, again = faults("keep")
    assert applied == "True"
    assert fresh > 100  # the count sees first touches (fewer than 4,096 with huge pages)
    assert again < fresh // 20  # reused, not faulted in afresh
    _, fresh_by_default, again_by_default = faults("default")
    assert again_by_default > fresh_by_default // 2  # glibc's default unmaps it: faults again
