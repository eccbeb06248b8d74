"""GRPO really learns: tiny-random, trained from scratch on a two-rung reverse ladder, gets better
at reversing one digit (`reverse 7` -> `7`).

Settings that learn (found by sweeping lr / batch / std scaling on 2 CPU threads): full
fine-tune, lr 5e-4, 8 prompts x 8 completions x 3 tokens, Dr. GRPO advantages (no std
scaling: with it, the tiny reward differences of a random model are blown up and the policy
collapses onto one output), uniform scheduler. Over 3 seeds the reverse-1 training reward went
from ~0.06 (first 30 steps that drew it) to 0.22-0.37 (last 30) in 300 steps, and greedy
accuracy from 0 to 0-38% (reward 0.21-0.50); about 60-100 s here.
"""

from __future__ import annotations

from pathlib import Path

from dumpcli.cli import main
from dumpcli.fsutil import read_jsonl

STEPS = 300
WINDOW = 30  # steps that drew reverse-1 (nearly all: 8 slots over 2 distributions)
RISE = 0.10  # the smallest rise over 3 seeds was ~0.15


def test_reward_on_the_easiest_distribution_rises_clearly(tmp_path: Path) -> None:
    from dumpcli.data.recipe import prepare_recipe

    recipe = {"seed": 42, "sources": [{"source": "ladder", "tasks": ["reverse"], "lengths": "1-2", "train": 500, "test": 16}]}
    prepare_recipe(recipe, tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", "--model", "tiny-random", "--data", str(tmp_path / "data"), "--out", str(out),
            "--scheduler", "uniform", "--steps", str(STEPS), "--batch-size", "8", "--num-generations", "8",
            "--max-new-tokens", "3", "--lr", "5e-4", "--seed", "0",
            "--set", "model.lora=false", "--set", "grpo.scale_rewards=false", "--set", "run.threads=1",
            "--set", "data.eval_rows=16", "--set", "run.progress=false"]
    assert main(args) == 0

    drawn = [m["distributions"]["reverse-1"]["reward"] for m in read_jsonl(out / "metrics.jsonl")
             if m["distributions"]["reverse-1"]["prompts"]]
    first, last = sum(drawn[:WINDOW]) / WINDOW, sum(drawn[-WINDOW:]) / WINDOW
    assert last >= first + RISE, f"reverse-1 training reward {first:.3f} -> {last:.3f}"
    evals = read_jsonl(out / "eval.jsonl")
    start, end = evals[0]["distributions"]["reverse-1"]["reward"], evals[-1]["distributions"]["reverse-1"]["reward"]
    assert end >= start + RISE, f"reverse-1 greedy eval reward {start:.3f} -> {end:.3f}"
