"""Run every benchmark in its own process (so peak RSS is per benchmark) and print a table.

python -m benchmarks [--orders N] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp

from benchmarks.suite import BENCHMARKS, run_in_child


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--orders", type=int, default=20_000, help="ERP orders in the generated day")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only the benchmarks whose function name contains one of these (e.g. parse, match)",
    )
    args = parser.parse_args()
    chosen = [fn for fn in BENCHMARKS if not args.only or any(word in fn.__name__ for word in args.only)]
    if not chosen:
        parser.error(f"no benchmark matches {args.only}: {', '.join(fn.__name__ for fn in BENCHMARKS)}")
    ctx = mp.get_context("spawn")
    results = []
    for fn in chosen:
        queue = ctx.Queue()
        proc = ctx.Process(target=run_in_child, args=(fn.__name__, args.orders, queue))
        proc.start()
        results.append(queue.get(timeout=1800))
        proc.join()
    width = max([44, *(len(r["benchmark"]) for r in results)])
    print(f"{'benchmark':<{width}} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9}  ratio (reference)")
    for r in results:
        print(
            f"{r['benchmark']:<{width}} {r['seconds']:>8.3f} {r['rows_per_s']:>10,.0f} "
            f"{r['peak_rss_mib']:>7.0f}Mi  {r['ratio_vs_reference']} ({r['reference']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
