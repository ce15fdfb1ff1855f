"""The benchmarks. Each returns its figures; ``python -m benchmarks`` runs each in its own process."""

from __future__ import annotations

import io
import resource
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from benchmarks.accuracy import bench_accuracy
from benchmarks.match_bench import bench_match
from benchmarks.parse_bench import (
    PARSE_BENCHMARKS,
    bench_parse_alipay_1m,
    bench_parse_camt_100k,
    bench_parse_wechat_1m,
)

DAY = date(2026, 11, 20)


def _best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_parse_wechat(orders: int) -> dict[str, Any]:
    import pandas as pd
    import pyarrow.csv as pacsv

    from recon.domain import Source
    from recon.parsing import parse_statement
    from recon_local.demo_data import generate_day

    name, data = generate_day(DAY, orders=orders).files["wechat-main"]
    parsed = parse_statement(
        data,
        filename=name,
        raw_key=name,
        statement_id="bench",
        source=Source.WECHAT,
        account_id="wechat-main",
    )
    rows = len(parsed.transactions)
    detail = data.split(b"\r\n\xe6\x80\xbb", 1)[0]  # the detail section only (up to the summary header)
    ours = _best_of(
        lambda: parse_statement(
            data,
            filename=name,
            raw_key=name,
            statement_id="bench",
            source=Source.WECHAT,
            account_id="wechat-main",
        )
    )
    arrow = _best_of(lambda: pacsv.read_csv(io.BytesIO(detail)))
    pandas = _best_of(lambda: pd.read_csv(io.BytesIO(detail), dtype=str))
    return {
        "benchmark": f"parse WeChat ALL bill ({rows:,} rows)",
        "seconds": ours,
        "rows_per_s": rows / ours,
        "reference": "pyarrow.csv.read_csv / pandas.read_csv of the same bytes",
        "ratio_vs_reference": f"{ours / arrow:.1f}x pyarrow, {ours / pandas:.1f}x pandas",
        "peak_rss_mib": _peak_mib(),
    }


BENCHMARKS = [bench_parse_wechat, *PARSE_BENCHMARKS, bench_match, bench_accuracy]
_ = (bench_parse_wechat_1m, bench_parse_alipay_1m, bench_parse_camt_100k)  # run_in_child finds them here


def run_in_child(fn_name: str, orders: int, queue: Any) -> None:
    queue.put(globals()[fn_name](orders))
