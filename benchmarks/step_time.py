"""One GRPO step of dump's trainer vs TRL's GRPOTrainer: time and peak memory, side by side.

    .venv/bin/python benchmarks/step_time.py                                  # tiny-random, then smollm2-135m
    .venv/bin/python benchmarks/step_time.py --models tiny-random --steps 3 --json
    .venv/bin/python benchmarks/step_time.py --models smollm2-135m --batch-size 4 --max-new-tokens 32

Both sides get the same model weights (loaded by dump's loader), the same LoRA config, prompts
from the same dataset (the cpu-demo recipe, rendered with the chat template and prefill), the
same batch, group size, completion length, micro-batch, optimizer settings and thread count.
TRL runs with gradient checkpointing off (its default is on) and loss_type grpo, like dump.
Each side runs in its own subprocess, one after the other, so peak RSS (ru_maxrss) is its own.
The first step is a warm-up; the reported step time is the median of the rest. Needs the
`bench` extra (trl).
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
from dataclasses import asdict, dataclass
from pathlib import Path
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


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc), in MiB; 0 where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def train_config(setup: Setup, out: str) -> Any:
    from dumpcli.config import DataConfig, GRPOConfig, RunConfig, TrainConfig
    from dumpcli.config import ModelConfig

    return TrainConfig(
        model=ModelConfig(name=setup.model, lora_r=setup.lora_r, lora_alpha=setup.lora_alpha, dtype="float32"),
        data=DataConfig(recipe="cpu-demo"),
        grpo=GRPOConfig(
            steps=setup.steps + 1, batch_size=setup.batch_size, num_generations=setup.num_generations,
            max_new_tokens=setup.max_new_tokens, micro_batch_size=setup.micro_batch_size,
        ),
        run=RunConfig(out=out, seed=setup.seed, eval_at_start=False, progress=False, threads=setup.threads),
    )


def run_ours(setup: Setup) -> dict[str, Any]:
    from dumpcli.train.setup import build_trainer

    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(train_config(setup, str(Path(tmp) / "run")))
        setup_rss = current_rss_mb()
        times, lengths = [], []
        for _ in range(setup.steps + 1):
            started = time.perf_counter()
            metrics = trainer.train_step()
            times.append(time.perf_counter() - started)
            lengths.append(metrics["completions/mean_length"])
    return {"step_times_s": times, "mean_lengths": lengths, "setup_rss_mb": setup_rss}


def trl_dataset(setup: Setup, tokenizer: Any) -> Any:
    """The cpu-demo train rows as TRL plain-text prompts: chat template + prefill, as dump renders them."""
    from datasets import Dataset

    from dumpcli.policy import render_prompts
    from dumpcli.train.setup import resolve_dataset

    rows = resolve_dataset(train_config(setup, "unused")).rows("train")
    texts = render_prompts(tokenizer, [r["prompt"] for r in rows], [r["prefill"] for r in rows])
    return Dataset.from_dict({
        "prompt": texts,
        "prefill": [r["prefill"] for r in rows],
        "answer": [r["answer"] for r in rows],
        "distribution": [r["distribution"] for r in rows],
    })


def trl_reward(dataset_dir_rewards: dict[str, Any]):
    """TRL reward function calling dump's registered reward of each row's distribution."""

    def reward(prompts: list[str], completions: list[str], prefill: list[str], answer: list[str],
               distribution: list[str], **_: Any) -> list[float]:
        return [dataset_dir_rewards[d](p + c, a).reward for c, p, a, d in zip(completions, prefill, answer, distribution)]

    return reward


def run_trl(setup: Setup) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from dumpcli.config import ModelConfig
    from dumpcli.policy import default_lora_targets, load_policy
    from dumpcli.rewards import get_reward
    from dumpcli.train.setup import resolve_dataset

    if setup.threads:
        torch.set_num_threads(setup.threads)
    loaded = load_policy(ModelConfig(name=setup.model, lora=False, dtype="float32"), setup.seed)
    dataset_dir = resolve_dataset(train_config(setup, "unused"))
    rewards = {d.name: get_reward(d.reward) for d in dataset_dir.distributions}
    times: list[float] = []
    lengths: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            times.append(time.perf_counter() - self.started)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    with tempfile.TemporaryDirectory() as tmp:
        args = GRPOConfig(
            output_dir=tmp, max_steps=setup.steps + 1, seed=setup.seed,
            per_device_train_batch_size=setup.micro_batch_size,
            gradient_accumulation_steps=setup.completions // setup.micro_batch_size,
            num_generations=setup.num_generations, max_completion_length=setup.max_new_tokens,
            temperature=1.0, top_p=1.0, top_k=0, learning_rate=2e-4, lr_scheduler_type="constant",
            weight_decay=0.0, max_grad_norm=1.0, beta=0.0, epsilon=0.2, loss_type="grpo", scale_rewards="group",
            num_iterations=1, gradient_checkpointing=False, bf16=False, fp16=False,
            use_cpu=not torch.cuda.is_available(), logging_steps=1, report_to="none", save_strategy="no",
            remove_unused_columns=False, dataloader_num_workers=0, log_completions=False, disable_tqdm=True,
        )
        lora = LoraConfig(r=setup.lora_r, lora_alpha=setup.lora_alpha, lora_dropout=0.0, bias="none",
                          target_modules=default_lora_targets(loaded.model), task_type="CAUSAL_LM")
        trainer = GRPOTrainer(model=loaded.model, reward_funcs=[trl_reward(rewards)], args=args,
                              train_dataset=trl_dataset(setup, loaded.tokenizer), processing_class=loaded.tokenizer,
                              peft_config=lora, callbacks=[StepTimer()])
        setup_rss = current_rss_mb()
        trainer.train()
    return {"step_times_s": times, "mean_lengths": lengths, "setup_rss_mb": setup_rss}


def run_side(side: str, setup: Setup) -> dict[str, Any]:
    result = run_ours(setup) if side == "ours" else run_trl(setup)
    timed = result["step_times_s"][1:] or result["step_times_s"]
    return {**result, "side": side, "step_time_s": statistics.median(timed), "peak_rss_mb": peak_rss_mb()}


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
