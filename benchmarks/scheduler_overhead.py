"""Scheduler overhead per training step: update + draw, for every installed built-in scheduler.

    .venv/bin/python benchmarks/scheduler_overhead.py                 # 10, 100, 1000 distributions
    .venv/bin/python benchmarks/scheduler_overhead.py --steps 500 --json

A step is what the trainer does: update the scheduler with one step's advantages and rewards
(batch prompts x group completions, grouped by distribution), then draw the next batch's
distributions. Building the synthetic inputs is not timed. Target: < 1 ms at 1000 distributions.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from dumpcli.scheduler import Distribution, available_schedulers, build_scheduler

BUILT_INS = ("ucb", "uniform", "sequential", "thompson")


def step_inputs(draw: np.ndarray, k: int, group: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step as the trainer hands it over: each completion's distribution, advantage and reward [N]."""
    distribution = np.repeat(draw, group)  # completions are grouped per prompt slot
    rewards = rng.integers(0, 2, size=distribution.size).astype(np.float64)
    return distribution, rng.standard_normal(distribution.size), rewards


def time_scheduler(name: str, k: int, steps: int, batch: int, group: int) -> dict[str, float]:
    """Median and mean milliseconds of update + draw over `steps` steps, after a short warm-up."""
    distributions = [Distribution(f"d{j}", 1000, float(j)) for j in range(k)]
    scheduler = build_scheduler(name, distributions, seed=0)
    rng = np.random.default_rng(1)
    draw = scheduler.draw(batch)
    times = []
    for step in range(steps + 10):
        distribution, advantages, rewards = step_inputs(draw, k, group, rng)
        start = time.perf_counter()
        scheduler.update(distribution, advantages, rewards)
        draw = scheduler.draw(batch)
        if step >= 10:
            times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    return {"scheduler": name, "distributions": k, "median_ms": float(np.median(ms)), "mean_ms": float(ms.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per configuration")
    parser.add_argument("--batch", type=int, default=128, help="prompts per step")
    parser.add_argument("--group", type=int, default=16, help="completions per prompt")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="numbers of distributions")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args()
    names = [n for n in BUILT_INS if n in available_schedulers()]
    results = [time_scheduler(n, k, args.steps, args.batch, args.group) for n in names for k in args.sizes]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"update + draw per step, batch {args.batch} prompts x {args.group} completions, {args.steps} steps")
    print(f"{'scheduler':<12}{'distributions':>14}{'median ms':>12}{'mean ms':>10}")
    for r in results:
        print(f"{r['scheduler']:<12}{r['distributions']:>14}{r['median_ms']:>12.3f}{r['mean_ms']:>10.3f}")


if __name__ == "__main__":
    main()
