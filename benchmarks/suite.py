"""The benchmarks. Each returns its figures; ``python -m benchmarks`` runs each in its own process."""

from __future__ import annotations

from typing import Any

from benchmarks.accuracy import bench_accuracy
from benchmarks.match_bench import bench_match
from benchmarks.parse_bench import (
    PARSE_BENCHMARKS,
    bench_parse_alipay_1m,
    bench_parse_camt_100k,
    bench_parse_wechat_1m,
)

BENCHMARKS = [*PARSE_BENCHMARKS, bench_match, bench_accuracy]
_ = (bench_parse_wechat_1m, bench_parse_alipay_1m, bench_parse_camt_100k)  # run_in_child finds them here


def run_in_child(fn_name: str, orders: int, queue: Any) -> None:
    queue.put(globals()[fn_name](orders))
