"""Run a benchmark step in a fresh (spawned) process and report its peak memory, as a Lambda task would."""

from __future__ import annotations

import importlib
import multiprocessing as mp
from typing import Any

from benchmarks.memory import peak_rss_mib


def _child(module: str, target: str, args: tuple[Any, ...], queue: Any) -> None:
    result: dict[str, Any] = getattr(importlib.import_module(module), target)(*args)
    result.setdefault("peak_rss_mib", peak_rss_mib())  # a step may have read its own before bookkeeping
    queue.put(result)


def in_child(module: str, target: str, *args: Any) -> dict[str, Any]:
    """``module.target(*args)`` (a dict) in a spawned child, with the child's ``peak_rss_mib`` added unless
    the step reported its own. The step imports what it needs before its clock starts (a warm container)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(module, target, args, queue))
    proc.start()
    result: dict[str, Any] = queue.get(timeout=3600)
    proc.join()
    return result
