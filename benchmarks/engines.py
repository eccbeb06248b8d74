"""The same config through both engines, `--engine dump` and `--engine trl`: seconds per step, peak RSS, rewards.

    .venv/bin/python benchmarks/engines.py                                     # ladder-tiny (60 steps), then the cpu-demo
    .venv/bin/python benchmarks/engines.py --configs examples/configs/ladder-tiny.yaml --steps 40 --json

Each (config, engine) trains once, through `dump train`, in its own subprocess (so peak RSS,
ru_maxrss, is its own), one after the other, with the same seed, threads and everything else;
only `run.engine` differs. Seconds per step is the median of `step_time_s` in metrics.jsonl over
every step but the first (draw to log; evaluation and checkpoints excluded); the reward curves
are metrics.jsonl's per-step `reward`, printed side by side. The table goes in docs/engines.md.
Needs the `trl` extra.
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
from typing import Any

DEFAULT_CONFIGS = {"examples/configs/ladder-tiny.yaml": 60, "examples/configs/cpu-demo.yaml": 24}  # config -> steps
ENGINES = ("dump", "trl")


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def train_args(config: str, engine: str, out: Path, steps: int, threads: int) -> list[str]:
    return ["train", "--config", config, "--engine", engine, "--out", str(out), "--steps", str(steps),
            "--set", f"run.threads={threads}", "--set", "run.progress=false", "--set", "run.eval_every=0"]


def child(argv: list[str]) -> int:
    """Train in this process; the last stdout line is this process's peak RSS as JSON."""
    from dumpcli.cli import main

    code = main(argv)
    print(json.dumps({"code": code, "peak_rss_mb": peak_rss_mb()}))
    return code


def run_one(config: str, engine: str, steps: int, threads: int, root: Path) -> dict[str, Any]:
    out = root / f"{Path(config).stem}-{engine}"
    env = dict(os.environ)
    if threads:  # OpenMP pools too, not only torch's intra-op threads
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(train_args(config, engine, out, steps, threads))],
                          capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{engine} on {config} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    times = [r["step_time_s"] for r in rows[1:]] or [rows[0]["step_time_s"]]
    return {"config": config, "engine": engine, "steps": len(rows), "wall_s": wall,
            "step_time_s": statistics.median(times), "peak_rss_mb": json.loads(proc.stdout.splitlines()[-1])["peak_rss_mb"],
            "reward": [r["reward"] for r in rows], "eval_reward": [e["reward"] for e in evals],
            "prompts": {n: sum(r["distributions"][n]["prompts"] for r in rows) for n in rows[0]["distributions"]}}


def quarter_means(values: list[float]) -> tuple[float, float]:
    k = max(1, len(values) // 4)
    return statistics.mean(values[:k]), statistics.mean(values[-k:])


def print_report(results: list[dict[str, Any]]) -> None:
    err = sys.stderr
    print(f"\n{'config':<14} {'engine':<6} {'s/step':>7} {'wall s':>7} {'peak RSS MiB':>13} "
          f"{'reward 1st→last quarter':>24} {'eval reward start→end':>22}", file=err)
    for r in results:
        first, last = quarter_means(r["reward"])
        print(f"{Path(r['config']).stem:<14} {r['engine']:<6} {r['step_time_s']:>7.2f} {r['wall_s']:>7.0f} "
              f"{r['peak_rss_mb']:>13.0f} {first:>11.3f} → {last:<10.3f} "
              f"{r['eval_reward'][0]:>9.3f} → {r['eval_reward'][-1]:<9.3f}", file=err)
    for config in dict.fromkeys(r["config"] for r in results):
        pair = {r["engine"]: r for r in results if r["config"] == config}
        print(f"\n{Path(config).stem}: reward per step (mean of each 4 steps), dump | trl", file=err)
        dump, trl = pair["dump"]["reward"], pair["trl"]["reward"]
        for start in range(0, min(len(dump), len(trl)), 4):
            print(f"  steps {start + 1:>3}-{start + 4:<3} {statistics.mean(dump[start:start + 4]):.3f} | "
                  f"{statistics.mean(trl[start:start + 4]):.3f}", file=err)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--configs", help="comma-separated config files (default: ladder-tiny and cpu-demo)")
    p.add_argument("--steps", type=int, help="steps per run (default: 60 for ladder-tiny, 24 for the cpu-demo)")
    p.add_argument("--threads", type=int, default=1, help="torch/OpenMP threads of every run (1: steady on a shared machine)")
    p.add_argument("--out", type=Path, help="keep the run dirs here (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    configs = {c: args.steps or DEFAULT_CONFIGS.get(c, 24) for c in args.configs.split(",")} if args.configs else {
        c: args.steps or s for c, s in DEFAULT_CONFIGS.items()}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        results = [run_one(c, e, steps, args.threads, root) for c, steps in configs.items() for e in ENGINES]
    print_report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
