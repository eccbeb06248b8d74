"""K&K puzzle generation speed: puzzles (unique solution, distinct) per second on one core.

    python benchmarks/kk_generation.py            # 1000 puzzles each for N = 3, 8, 14
    python benchmarks/kk_generation.py --count 200 --people 3,14

Targets from the issue: 1000 puzzles with N = 8 in under 20 s, N = 14 in under 5 minutes.
Also reports the share of sampled statement sets that have exactly one solution.
"""

from __future__ import annotations

import argparse
import time

from dumpcli.data import kk
from dumpcli.data.common import rng_for


def bench(n: int, count: int, seed: int) -> dict[str, float]:
    unique = 0
    rng = rng_for(seed, 1, n)
    assign = kk.all_assignments(n)
    start = time.perf_counter()
    kk.generate_puzzles(n, count, rng_for(seed, 1, n))
    elapsed = time.perf_counter() - start
    for _ in range(500):  # acceptance rate, measured separately so the timing stays clean
        statements = tuple(kk.sample_statement(rng, i, n, 2) for i in range(n))
        unique += len(kk.solutions(statements, assign)) == 1
    return {"seconds": elapsed, "per_second": count / elapsed, "unique_share": unique / 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--people", default="3,8,14")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"{'N':>3} {'puzzles':>8} {'seconds':>8} {'puzzles/s':>10} {'unique share':>13}")
    for n in (int(v) for v in args.people.split(",")):
        r = bench(n, args.count, args.seed)
        print(f"{n:>3} {args.count:>8} {r['seconds']:>8.2f} {r['per_second']:>10.1f} {r['unique_share']:>13.2f}")


if __name__ == "__main__":
    main()
