"""How fast `dump inspect` answers on a long run: a generated 100,000-step metrics.jsonl, 10 distributions.

    .venv/bin/python benchmarks/inspect_speed.py                  # 100k steps, 3 repeats
    .venv/bin/python benchmarks/inspect_speed.py --steps 20000 --json

Times, per repeat: reading the run dir into columns (`load_run`), building the summary
(`summarize_run`), and the whole command as a user runs it (`python -m dumpcli inspect RUN --json`
in a fresh process, interpreter start included: wall and CPU seconds; CPU time is the honest
number on a shared machine). Generating the run is not timed; it is kept
in --dir between invocations. Target: the whole command under 2 s at 100k steps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from dumpcli.inspect.summary import load_run, summarize_run


def generate_run(run_dir: Path, steps: int, k: int, seed: int = 0) -> Path:
    """A finished run dir in the docs/formats.md format (metrics and evals; no checkpoints)."""
    if (run_dir / "metrics.jsonl").exists() and (run_dir / ".steps").read_text() == f"{steps} {k}":
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    names = [f"kk-{i + 3}" for i in range(k)]
    config = {"format_version": 1, "dump_version": "0.1.0", "model": {"name": "bench"}, "data": {"path": None, "recipe": None},
              "grpo": {"steps": steps, "batch_size": 16, "num_generations": 8},
              "scheduler": {"name": "ucb", "options": {"window": 300, "c": 1.0, "tau": 0.1}}, "run": {"seed": seed}}  # fmt: skip
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=steps).round(6)
    counts = np.array([rng.multinomial(16, p / p.sum()) for p in probs])
    rewards, advs = rng.random((steps, k)).round(4), rng.random((steps, k)).round(4)
    with open(run_dir / "metrics.jsonl", "w") as f:
        for s in range(steps):
            dists = {
                n: {"probability": float(probs[s, j]), "prompts": int(counts[s, j]),
                    "reward": float(rewards[s, j]) if counts[s, j] else None,
                    "abs_advantage": float(advs[s, j]) if counts[s, j] else None}
                for j, n in enumerate(names)
            }  # fmt: skip
            row = {"step": s + 1, "time": 1764160000.0 + 7 * s, "elapsed_s": 7.0 * s, "loss": 0.01, "reward": float(rewards[s].mean()),
                   "reward_std": 0.3, "frac_reward_zero_std": 0.2, "kl": 0.0, "clip_ratio": 0.0, "grad_norm": 0.8,
                   "learning_rate": 2e-4, "completions/mean_length": 14.2, "completions/clipped_ratio": 0.1,
                   "tokens_per_second": 310.0, "step_time_s": 7.0, "rewards/answer": 0.3, "scheduler": "ucb", "distributions": dists}  # fmt: skip
            f.write(json.dumps(row) + "\n")
    evals = [{"step": s, "time": 0.0, "reward": 0.5, "accuracy": 0.5, "distributions": {n: {"reward": 0.5, "accuracy": 0.5, "n": 20} for n in names}}
             for s in range(0, steps + 1, max(1, steps // 100))]  # fmt: skip
    (run_dir / "eval.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
    (run_dir / ".steps").write_text(f"{steps} {k}")
    return run_dir


def time_once(run_dir: Path) -> dict[str, float]:
    start = time.perf_counter()
    run = load_run(run_dir)
    loaded = time.perf_counter()
    summary = summarize_run(run)
    summarized = time.perf_counter()
    assert summary["step"] == len(run.metrics)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "dumpcli", "inspect", str(run_dir), "--json"], capture_output=True, check=True)
    command = time.perf_counter() - summarized
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert json.loads(proc.stdout)["step"] == summary["step"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"load_s": loaded - start, "summary_s": summarized - loaded, "command_s": command, "command_cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="steps in the generated metrics.jsonl")
    parser.add_argument("--distributions", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "dump-inspect-bench", help="where the run is generated (kept)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args()
    run_dir = generate_run(args.dir / f"run-{args.steps}-{args.distributions}", args.steps, args.distributions)
    size_mb = (run_dir / "metrics.jsonl").stat().st_size / 1e6
    times = [time_once(run_dir) for _ in range(args.repeats)]
    result = {"steps": args.steps, "distributions": args.distributions, "metrics_mb": round(size_mb, 1),
              "load_average_1m": round(os.getloadavg()[0], 2),
              **{k: round(statistics.median(t[k] for t in times), 3) for k in times[0]}}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.steps} steps x {args.distributions} distributions, metrics.jsonl {size_mb:.0f} MB, median of {args.repeats}")
    print(f"load_run      {result['load_s']:.3f} s")
    print(f"summarize_run {result['summary_s']:.3f} s")
    print(f"dump inspect --json (fresh process) {result['command_s']:.3f} s wall, {result['command_cpu_s']:.3f} s CPU")
    print(f"(load average {result['load_average_1m']} on {os.cpu_count()} cores: wall times stretch when others share the machine)")


if __name__ == "__main__":
    main()
