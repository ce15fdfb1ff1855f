"""Peak memory of the current process, as the benchmarks report it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident set size (``VmHWM``), in MiB.

    Not ``getrusage().ru_maxrss``: Linux carries that across fork and exec, so a child process started by a
    large parent (one that generated the benchmark day, say) reports at least the parent's size. ``VmHWM``
    belongs to the process's own address space. ``ru_maxrss`` is the fallback where /proc is absent.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
