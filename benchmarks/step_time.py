"""One GRPO step of dump's trainer vs TRL's GRPOTrainer: time and peak memory, side by side.

    .venv/bin/python benchmarks/step_time.py                                  # tiny-random, then smollm2-135m
    .venv/bin/python benchmarks/step_time.py --models tiny-random --steps 3 --json
    .venv/bin/python benchmarks/step_time.py --models smollm2-135m --batch-size 4 --max-new-tokens 32

Both sides train the same LoRA-wrapped model (dump's loader builds it; TRL gets the PeftModel), prompts
from the same dataset (the cpu-demo recipe, rendered with the chat template and prefill), the
same batch, group size, completion length, micro-batch, optimizer settings and thread count.
TRL runs with gradient checkpointing off (its default is on) and loss_type grpo, like dump.
Each side runs in its own subprocess, one after the other, so peak RSS (ru_maxrss) is its own.
The first step is a warm-up; the reported step time is the median of the rest. Needs the
`bench` extra (trl). The two sides' code is benchmarks/grpo_compare.py, shared with gpu_check.py.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_SHAPES = {  # prompts x completions x new tokens per model: a few seconds and a few minutes on 2 threads
    "tiny-random": (8, 8, 12),
    "smollm2-135m": (4, 8, 32),
}


@dataclass
class Setup:
    model: str
    batch_size: int  # prompts per step
    num_generations: int  # completions per prompt
    max_new_tokens: int
    micro_batch_size: int  # completions per forward/backward
    lora_r: int
    lora_alpha: int
    steps: int  # timed steps, after one warm-up step
    seed: int
    threads: int

    @property
    def completions(self) -> int:
        return self.batch_size * self.num_generations


def train_config(setup: Setup) -> Any:
    from dumpcli.config import DataConfig, GRPOConfig, ModelConfig, RunConfig, TrainConfig

    return TrainConfig(
        model=ModelConfig(name=setup.model, lora_r=setup.lora_r, lora_alpha=setup.lora_alpha, dtype="float32"),
        data=DataConfig(recipe="cpu-demo"),
        grpo=GRPOConfig(
            steps=setup.steps + 1, batch_size=setup.batch_size, num_generations=setup.num_generations,
            max_new_tokens=setup.max_new_tokens, micro_batch_size=setup.micro_batch_size,
        ),
        run=RunConfig(seed=setup.seed, eval_at_start=False, progress=False, threads=setup.threads),
    )


def run_side(side: str, setup: Setup) -> dict[str, Any]:
    from grpo_compare import SIDES, peak_rss_mb

    result = SIDES[side](train_config(setup), setup.steps + 1)
    times = [s["step_s"] for s in result["steps"]]
    timed = times[1:] or times
    return {"side": side, "step_times_s": times, "mean_lengths": [s["mean_length"] for s in result["steps"]],
            "setup_rss_mb": result["setup_rss_mb"], "step_time_s": statistics.median(timed),
            "peak_rss_mb": peak_rss_mb()}


def spawn(side: str, setup: Setup) -> dict[str, Any]:
    """Run one side in a fresh interpreter, so its peak RSS is its own; the last stdout line is JSON."""
    cmd = [sys.executable, __file__, "--side", side, "--setup", json.dumps(asdict(setup))]
    env = dict(os.environ)
    if setup.threads:  # OpenMP pools too, not only torch's intra-op threads
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(setup.threads)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{side} side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(setup: Setup, ours: dict[str, Any], trl: dict[str, Any]) -> dict[str, Any]:
    return {
        "setup": asdict(setup),
        "ours": ours,
        "trl": trl,
        "time_ratio_trl_over_ours": trl["step_time_s"] / ours["step_time_s"],
        "peak_rss_ratio_trl_over_ours": trl["peak_rss_mb"] / ours["peak_rss_mb"],
    }


def print_table(result: dict[str, Any]) -> None:
    s = result["setup"]
    print(f"\n{s['model']}: {s['batch_size']} prompts x {s['num_generations']} completions x "
          f"{s['max_new_tokens']} new tokens, micro-batch {s['micro_batch_size']}, LoRA r={s['lora_r']}, "
          f"{s['threads'] or 'default'} threads", file=sys.stderr)
    print(f"  {'side':<6} {'step s (median)':>16} {'all steps s':>28} {'mean len':>9} {'peak RSS MiB':>13}",
          file=sys.stderr)
    for side in ("ours", "trl"):
        r = result[side]
        steps = " ".join(f"{t:.2f}" for t in r["step_times_s"])
        length = statistics.mean(r["mean_lengths"]) if r["mean_lengths"] else float("nan")
        print(f"  {side:<6} {r['step_time_s']:>16.2f} {steps:>28} {length:>9.1f} {r['peak_rss_mb']:>13.0f}",
              file=sys.stderr)
    print(f"  TRL / dump: time x{result['time_ratio_trl_over_ours']:.2f}, "
          f"peak RSS x{result['peak_rss_ratio_trl_over_ours']:.2f}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="tiny-random,smollm2-135m", help="comma-separated model names")
    p.add_argument("--batch-size", type=int, help="prompts per step (default per model)")
    p.add_argument("--num-generations", type=int, help="completions per prompt (default per model)")
    p.add_argument("--max-new-tokens", type=int, help="completion length (default per model)")
    p.add_argument("--micro-batch-size", type=int, help="completions per forward/backward (default: all)")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads on both sides; 0 = torch's default. Use 1 on a busy machine: "
                        "oversubscribed OpenMP threads made steps 10-30x slower in our measurements")
    p.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    p.add_argument("--side", choices=["ours", "trl"], help=argparse.SUPPRESS)
    p.add_argument("--setup", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.side:
        print(json.dumps(run_side(args.side, Setup(**json.loads(args.setup)))))
        return 0
    results = []
    for model in args.models.split(","):
        batch, groups, tokens = DEFAULT_SHAPES.get(model, (4, 8, 32))
        batch, groups = args.batch_size or batch, args.num_generations or groups
        setup = Setup(model=model, batch_size=batch, num_generations=groups,
                      max_new_tokens=args.max_new_tokens or tokens,
                      micro_batch_size=args.micro_batch_size or batch * groups, lora_r=args.lora_r,
                      lora_alpha=args.lora_alpha, steps=args.steps, seed=args.seed, threads=args.threads)
        result = report(setup, spawn("ours", setup), spawn("trl", setup))
        print_table(result)
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
