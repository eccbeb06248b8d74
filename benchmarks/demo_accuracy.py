"""Exact-answer accuracy per distribution, greedy and sampled, of the base model or a trained adapter.

    python benchmarks/demo_accuracy.py ~/.cache/dump/data/cpu-demo                     # base model
    python benchmarks/demo_accuracy.py DATA --run runs/x --k 4 --temperature 1 --json  # newest checkpoint

`dump eval` reports greedy reward and accuracy only; the demo has to be judged on accuracy, and
GRPO trains on *samples*, so this script prints both:
  greedy   fraction of test rows whose greedy completion has the right final number
  sampled  mean over test rows of the fraction of k samples (at --temperature) that are right
plus the mean reward, the share of completions cut at --max-new-tokens, and a few completions.
Correctness is the dataset's own reward's `correct` flag (dumpcli.rewards.get_reward). With --run
the model config (name, LoRA rank) and max_new_tokens come from the run's config.yaml.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, help="dataset dir (dump prepare ... --out DIR)")
    p.add_argument("--run", type=Path, help="run dir: load its newest checkpoint's adapter and its model config")
    p.add_argument("--adapter", type=Path, help="a checkpoint folder (step-N or step-N/adapter) instead of --run")
    p.add_argument("--rows", type=int, default=48, help="test rows per distribution (the first N)")
    p.add_argument("--k", type=int, default=4, help="samples per test row for sampled accuracy (0 = skip)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the run's, else 1.0)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the run's grpo.max_new_tokens, else the config default")
    p.add_argument("--batch", type=int, default=48, help="prompts per generate call")
    p.add_argument("--seed", type=int, default=1234, help="seed of the sampled completions")
    p.add_argument("--show", type=int, default=2, help="greedy completions to print per distribution")
    p.add_argument("--distributions", help="comma-separated subset")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return p.parse_args(argv)


def newest_adapter(run: Path) -> Path:
    steps = sorted((run / "checkpoints").glob("step-*"))
    if not steps:
        sys.exit(f"{run} has no checkpoint")
    return steps[-1] / "adapter"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from dumpcli.config import GRPOConfig
    from dumpcli.data.dataset import load_dataset_dir
    from dumpcli.generation import eos_token_ids
    from dumpcli.models import ModelConfig, generate, load_adapter_weights, load_policy, render_prompts
    from dumpcli.rewards import get_reward

    torch.set_num_threads(args.threads)
    run_cfg: dict[str, Any] = {}
    adapter = None
    if args.run is not None:
        run_cfg = yaml.safe_load((args.run / "config.yaml").read_text())
        adapter = newest_adapter(args.run)
    elif args.adapter is not None:
        adapter = args.adapter / "adapter" if (args.adapter / "adapter").is_dir() else args.adapter
        for up in (adapter.parent.parent.parent, adapter.parent.parent):
            if (up / "config.yaml").is_file():
                run_cfg = yaml.safe_load((up / "config.yaml").read_text())
                break
    grpo = run_cfg.get("grpo", {})
    max_new = args.max_new_tokens or grpo.get("max_new_tokens") or GRPOConfig().max_new_tokens
    temperature = args.temperature if args.temperature is not None else grpo.get("temperature", 1.0)
    model_cfg = ModelConfig(**run_cfg["model"]) if run_cfg.get("model") else ModelConfig()
    if adapter is None:
        model_cfg.lora = False  # the base model, no adapter

    t0 = time.time()
    loaded = load_policy(model_cfg, seed=0)
    if adapter is not None:
        load_adapter_weights(loaded.model, adapter)
    loaded.model.eval()
    eos = set(eos_token_ids(loaded))

    ds = load_dataset_dir(args.data)
    wanted = args.distributions.split(",") if args.distributions else ds.names
    test = ds.rows("test")
    result: dict[str, Any] = {"data": str(args.data), "adapter": str(adapter) if adapter else None,
                              "model": model_cfg.name, "max_new_tokens": max_new, "temperature": temperature,
                              "k": args.k, "distributions": {}}
    torch.manual_seed(args.seed)
    for name in wanted:
        info = ds.distribution(name)
        reward = get_reward(info.reward)
        rows = [r for r in test if r["distribution"] == name][: args.rows]
        g_right, g_reward, g_clip, s_right, s_clip, shown = [], [], [], [], [], []
        for start in range(0, len(rows), args.batch):
            batch = rows[start:start + args.batch]
            texts = render_prompts(loaded.tokenizer, [r["prompt"] for r in batch], [r["prefill"] for r in batch])
            with torch.no_grad():
                greedy = generate(loaded, texts, 1, max_new, greedy=True)
            for i, (row, text) in enumerate(zip(batch, greedy.texts)):
                res = reward(row["prefill"] + text, row["answer"])
                g_right.append(float(res.correct))
                g_reward.append(float(res.reward))
                g_clip.append(float(_clipped(greedy, i, max_new, eos)))
                if len(shown) < args.show:
                    shown.append({"prompt": row["prompt"][-1]["content"], "answer": row["answer"],
                                  "completion": row["prefill"] + text, "correct": bool(res.correct)})
            if args.k > 0:
                with torch.no_grad():
                    sampled = generate(loaded, texts, args.k, max_new, temperature=temperature)
                for i, row in enumerate(batch):
                    right = [reward(row["prefill"] + sampled.texts[i * args.k + j], row["answer"]).correct for j in range(args.k)]
                    s_right.append(sum(right) / args.k)
                    s_clip += [float(_clipped(sampled, i * args.k + j, max_new, eos)) for j in range(args.k)]
        result["distributions"][name] = {
            "n": len(rows), "greedy_acc": _mean(g_right), "greedy_reward": _mean(g_reward), "greedy_clipped": _mean(g_clip),
            "sampled_acc": _mean(s_right) if args.k > 0 else None, "sampled_clipped": _mean(s_clip) if args.k > 0 else None,
            "samples": shown,
        }
        if not args.json:
            d = result["distributions"][name]
            print(f"{name:14s} n={d['n']:3d} greedy {d['greedy_acc']:.3f} sampled "
                  f"{(d['sampled_acc'] if d['sampled_acc'] is not None else float('nan')):.3f} "
                  f"clipped {d['greedy_clipped']:.2f}/{(d['sampled_clipped'] or 0):.2f}", file=sys.stderr, flush=True)
    per = result["distributions"].values()
    result["mean_greedy_acc"] = _mean([d["greedy_acc"] for d in per])
    result["mean_sampled_acc"] = _mean([d["sampled_acc"] for d in per]) if args.k > 0 else None
    result["seconds"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"\n{'distribution':14s} {'n':>4s} {'greedy':>7s} {'sampled':>8s} {'clip(g)':>8s}")
        for name, d in result["distributions"].items():
            s = "-" if d["sampled_acc"] is None else f"{d['sampled_acc']:.3f}"
            print(f"{name:14s} {d['n']:4d} {d['greedy_acc']:7.3f} {s:>8s} {d['greedy_clipped']:8.2f}")
        ms = "-" if result["mean_sampled_acc"] is None else f"{result['mean_sampled_acc']:.3f}"
        print(f"{'mean':14s} {'':4s} {result['mean_greedy_acc']:7.3f} {ms:>8s}")
        print(f"(max_new_tokens {max_new}, k={args.k} at T={temperature}, {result['seconds']} s)")
        for name, d in result["distributions"].items():
            for s in d["samples"]:
                mark = "right" if s["correct"] else "wrong"
                print(f"  {name}: {s['prompt']!r} -> {s['completion']!r} [{mark}, answer {s['answer']}]")
    return 0


def _clipped(rollout: Any, i: int, max_new: int, eos: set[int]) -> bool:
    """The completion used every allowed token without ending (no EOS)."""
    n = int(rollout.completion_mask[i].sum())
    return n >= max_new and int(rollout.completion_ids[i, n - 1]) not in eos


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


if __name__ == "__main__":
    sys.exit(main())
