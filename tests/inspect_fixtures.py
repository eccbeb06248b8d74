"""Simulated run dirs, written through dump's own run-dir writer, for the `dump inspect` tests.

A small simulated curriculum: distribution i of K gets solvable as "skill" grows with the step,
so easy ones are learned first and a UCB-like softmax over p(1-p) moves from easy to hard.

Run as a script it is the live writer of the --follow tests (and a demo for people):

    python tests/inspect_fixtures.py runs/fake --steps 30 --sleep 0.2
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import yaml

from dumpcli.config import config_from_dict
from dumpcli.rundir import RunWriter
from dumpcli.rundir.layout import ADAPTER

NAMES = ["ladder-1", "ladder-2", "ladder-3", "ladder-4"]
T0 = 1764160000.0
BATCH = 8  # prompt slots per step
STEP_TIME = 2.0  # simulated seconds per step


def config_dict(total_steps: int, scheduler: str = "ucb", data: str | None = None) -> dict[str, Any]:
    """A resolved config.yaml as `dump train` writes it: format_version, dump_version, the sections."""
    options = {"window": 32, "c": 1.0, "tau": 0.1} if scheduler == "ucb" else {}
    return {
        "format_version": 1,
        "dump_version": "0.1.0",
        "model": {"name": "tiny-random", "dtype": "auto", "lora": True},
        "data": {"path": data, "recipe": "cpu-demo", "distributions": None, "eval_rows": 16},
        "grpo": {"steps": total_steps, "batch_size": BATCH, "num_generations": 4, "lr": 2e-4},
        "scheduler": {"name": scheduler, "options": options},
        "run": {"out": None, "seed": 0, "eval_every": 5, "save_every": 5},
    }


def dataset_record(names: list[str], difficulties: list[float] | None = None) -> dict[str, Any]:
    """The dataset.json a run keeps, as `DatasetDir.record` makes it (the data itself is simulated)."""
    difficulties = difficulties or list(range(1, len(names) + 1))
    dists = [{"name": n, "source": "ladder", "difficulty": d, "reward": "ladder", "train": 100, "test": 20}
             for n, d in zip(names, difficulties)]
    return {"path": "/simulated/ladder", "fingerprint": "0" * 64, "distributions": dists}


def create_run(run_dir: Path, total: int, names: list[str] = NAMES, scheduler: str = "ucb",
               difficulties: list[float] | None = None) -> RunWriter:
    """A new run dir (config.yaml, dataset.json) made by dump's writer."""
    return RunWriter.create(run_dir, config_from_dict(config_dict(total, scheduler)), dataset_record(names, difficulties))


def write_checkpoint(writer: RunWriter, step: int, pause: float = 0.0) -> None:
    """A checkpoint through the writer (temp dir, then rename); `pause` keeps the temp dir visible a while."""
    def contents(tmp: Path) -> None:
        (tmp / ADAPTER).mkdir()
        time.sleep(pause)

    writer.write_checkpoint(step, contents, {"elapsed_s": step * STEP_TIME, "data_rng": {}, "scheduler": "ucb", "time": T0})


def solve_rate(i: int, k: int, step: int, total: int) -> float:
    """Chance the simulated model solves distribution i of k at `step`: easy ones first."""
    skill = 1.15 * step / max(total, 1)
    difficulty = (i + 1) / k
    return 1 / (1 + math.exp(-10 * (skill - difficulty)))


def scheduler_probs(scheduler: str, learn: list[float], step: int, total: int) -> list[float]:
    """Roughly what each built-in scheduler would do with these learnabilities."""
    k = len(learn)
    if scheduler == "uniform":
        return [1 / k] * k
    if scheduler == "sequential":
        current = min(k - 1, (step - 1) * k // max(total, 1))
        return [1.0 if i == current else 0.0 for i in range(k)]
    weights = [math.exp(x / 0.1) for x in learn]
    return [w / sum(weights) for w in weights]


def metrics_row(step: int, total: int, names: list[str] = NAMES, seed: int = 0, scheduler: str = "ucb") -> dict[str, Any]:
    """One metrics.jsonl object, with every documented key."""
    rng = random.Random(seed * 1_000_003 + step)
    k = len(names)
    # a curriculum that matches the model's level learns faster: a crude stand-in for the real effect
    pace = {"ucb": 1.0, "thompson": 0.95, "sequential": 0.85, "uniform": 0.8}.get(scheduler, 1.0)
    rates = [solve_rate(i, k, round((step - 1) * pace), total) for i in range(k)]
    learn = [2 * r * (1 - r) for r in rates]
    probs = scheduler_probs(scheduler, learn, step, total)
    counts = [0] * k
    for _ in range(BATCH):
        counts[rng.choices(range(k), weights=probs)[0]] += 1
    dists = {}
    for i, name in enumerate(names):
        drawn = counts[i] > 0
        reward = min(1.0, max(0.0, rates[i] + rng.uniform(-0.1, 0.1)))
        dists[name] = {
            "probability": round(probs[i], 6),
            "prompts": counts[i],
            "reward": round(reward, 4) if drawn else None,
            "abs_advantage": round(learn[i], 4) if drawn else None,
        }
    batch_reward = sum(counts[i] * rates[i] for i in range(k)) / BATCH
    return {
        "step": step, "time": T0 + step * STEP_TIME, "elapsed_s": step * STEP_TIME,
        "loss": 0.01, "reward": round(batch_reward, 4), "reward_std": 0.3, "frac_reward_zero_std": 0.25,
        "kl": 0.0004, "clip_ratio": 0.0, "grad_norm": 0.8, "learning_rate": 0.0002,
        "completions/mean_length": 14.2, "completions/clipped_ratio": 0.5,
        "tokens_per_second": 300.0 + step % 7, "step_time_s": STEP_TIME, "generation_time_s": STEP_TIME * 0.7,
        "rewards/answer": round(batch_reward, 4),
        "scheduler": scheduler,
        "distributions": dists,
    }  # fmt: skip


def eval_row(step: int, total: int, names: list[str] = NAMES, scheduler: str = "ucb") -> dict[str, Any]:
    """One eval.jsonl object."""
    k = len(names)
    pace = {"ucb": 1.0, "thompson": 0.95, "sequential": 0.85, "uniform": 0.8}.get(scheduler, 1.0)
    per = {n: solve_rate(i, k, round(step * pace), total) for i, n in enumerate(names)}
    dists = {n: {"reward": round(r, 4), "accuracy": round(r, 4), "n": 20} for n, r in per.items()}
    mean = sum(per.values()) / k
    return {"step": step, "time": T0 + step * STEP_TIME + 1, "reward": round(mean, 4), "accuracy": round(mean, 4), "distributions": dists}


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """A config.yaml written by hand: for the tests of configs dump would never write (newer, broken)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def write_run(
    run_dir: Path,
    steps: int,
    total: int | None = None,
    names: list[str] = NAMES,
    eval_every: int = 5,
    scheduler: str = "ucb",
    seed: int = 0,
) -> Path:
    """A run dir with `steps` logged steps of `total` planned, evals every `eval_every` steps, checkpoints."""
    total = total or steps
    writer = create_run(run_dir, total, names, scheduler)
    for s in range(1, steps + 1):
        writer.append_metrics(metrics_row(s, total, names, seed, scheduler))
    for s in range(0, steps + 1, eval_every) if eval_every else ():
        writer.append_eval(eval_row(s, total, names, scheduler))
        if s:
            write_checkpoint(writer, s)
    return run_dir


def write_live(run_dir: Path, steps: int, sleep: float, eval_every: int = 5) -> None:
    """Write a run the way `dump train` does: config first, then one line per step, with pauses."""
    writer = create_run(run_dir, steps)
    time.sleep(sleep)
    for s in range(1, steps + 1):
        line = json.dumps(metrics_row(s, steps))
        with open(writer.run.metrics_path, "a", encoding="utf-8") as f:
            # half a line first, so readers see a partly written last line
            f.write(line[: len(line) // 2])
            f.flush()
            time.sleep(sleep / 2)
            f.write(line[len(line) // 2 :] + "\n")
        if eval_every and s % eval_every == 0:
            writer.append_eval(eval_row(s, steps))
            write_checkpoint(writer, s, pause=sleep / 2)  # readers see the temp dir meanwhile
        else:
            time.sleep(sleep / 2)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write a fake run dir live, like `dump train` does.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=0.2)
    args = parser.parse_args()
    write_live(args.run_dir, args.steps, args.sleep)
