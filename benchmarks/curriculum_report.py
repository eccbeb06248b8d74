"""Measurements and tables of the curriculum benchmark (benchmarks/curriculum.py): pure functions
over a run dir's eval.jsonl / metrics.jsonl (docs/formats.md), and their rendering.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


import numpy as np

from dumpcli.data.dataset import load_dataset_dir
from dumpcli.errors import DumpError
from dumpcli.fsutil import read_jsonl
from dumpcli.inspect.summary import curve_auc, eval_mean_curve
from dumpcli.output import human_console

REPO = Path(__file__).resolve().parent.parent
METRICS = ("steps_to_target", "auc", "final_reward", "final_hardest", "wall_s")
HEADERS = {
    "steps_to_target": "steps to target",
    "auc": "AUC (mean reward)",
    "final_reward": "final reward",
    "final_hardest": "final hardest",
    "wall_s": "wall s",
}


@dataclass
class RunSummary:
    scheduler: str
    seed: int
    steps_to_target: float  # math.inf when the target was never reached
    auc: float
    final_reward: float
    final_hardest: float
    wall_s: float


def run_name(scheduler: str, seed: int) -> str:
    return f"{scheduler}-seed{seed}"



# ---------------------------------------------------------------- measuring


def hardest_distributions(data_dir: Path) -> list[str]:
    """Names of the distributions with the largest difficulty in the dataset dir."""
    dists = load_dataset_dir(data_dir).distributions
    top = max(d.difficulty for d in dists)
    return [d.name for d in dists if d.difficulty == top]


def summarize_run(
    scheduler: str, seed: int, eval_rows: Sequence[Mapping[str, Any]], hardest: Sequence[str],
    target: float, wall_s: float,
) -> RunSummary:
    curve = eval_mean_curve(list(eval_rows))
    if not curve:
        raise DumpError(f"run {run_name(scheduler, seed)} has no evaluations; set run.eval_every below the step budget")
    reached = [step for step, reward in curve if reward >= target]
    steps, rewards = zip(*curve)
    # AUC as area per step (a mean reward, comparable across budgets): the one definition inspect uses too
    auc = curve_auc(np.array(steps), np.array(rewards))[1]
    last = eval_rows[-1]["distributions"]
    final_hardest = sum(last[name]["reward"] for name in hardest) / len(hardest)
    return RunSummary(
        scheduler=scheduler, seed=seed, steps_to_target=float(reached[0]) if reached else math.inf,
        auc=auc, final_reward=rewards[-1], final_hardest=final_hardest, wall_s=wall_s,
    )


def aggregate(
    summaries: Sequence[RunSummary], schedulers: Sequence[str], budget: int | None = None
) -> dict[str, dict[str, Any]]:
    """Per scheduler and metric: median, min, max over seeds and the ratio of medians to uniform.

    When exactly one of the two steps-to-target medians is `inf` (never reached within `budget`
    steps), the ratio has only a bound: `ratio_bound` "<x" or ">x".
    """
    table: dict[str, dict[str, Any]] = {}
    for scheduler in schedulers:
        runs = [s for s in summaries if s.scheduler == scheduler]
        row: dict[str, Any] = {"seeds": len(runs), "reached": sum(math.isfinite(r.steps_to_target) for r in runs)}
        for metric in METRICS:
            values = [getattr(r, metric) for r in runs]
            row[metric] = {"median": _median(values), "min": min(values), "max": max(values)}
        table[scheduler] = row
    for row in table.values():
        for metric in METRICS:
            row[metric]["ratio_to_uniform"] = _ratio(row[metric]["median"], table["uniform"][metric]["median"])
        row["steps_to_target"]["ratio_bound"] = _ratio_bound(
            row["steps_to_target"]["median"], table["uniform"]["steps_to_target"]["median"], budget
        )
    return table


def _median(values: Sequence[float]) -> float:
    # statistics.median averages the two middle values: inf (never reached) stays inf.
    return float(statistics.median(values))


def _ratio(value: float, uniform: float) -> float | None:
    if not (math.isfinite(value) and math.isfinite(uniform)) or uniform == 0:
        return None
    return value / uniform


def _ratio_bound(value: float, uniform: float, budget: int | None) -> str | None:
    if budget is None or math.isinf(value) == math.isinf(uniform):
        return None
    # The censored side took more than `budget` steps.
    return f"<{value / budget:.2f}" if math.isinf(uniform) else f">{budget / uniform:.2f}"


def diagnostics(runs_dir: Path, scheduler: str, seeds: Sequence[int], parts: int = 4) -> dict[str, Any]:
    """Mean probability and mean |advantage| per distribution in each part of training, over seeds.

    This is what explains a result: where the scheduler put its prompts, and how much each
    distribution could still teach (|A| near 0 = always or never solved).
    """
    per_dist: dict[str, dict[str, list[list[float]]]] = {}
    for seed in seeds:
        rows = read_jsonl(runs_dir / run_name(scheduler, seed) / "metrics.jsonl")
        for i, row in enumerate(rows):
            part = min(parts - 1, i * parts // max(len(rows), 1))
            for name, d in row["distributions"].items():
                slot = per_dist.setdefault(name, {"probability": [[] for _ in range(parts)],
                                                  "abs_advantage": [[] for _ in range(parts)]})
                slot["probability"][part].append(d["probability"])
                if d.get("abs_advantage") is not None:
                    slot["abs_advantage"][part].append(d["abs_advantage"])
    return {
        name: {key: [sum(v) / len(v) if v else None for v in lists] for key, lists in slots.items()}
        for name, slots in per_dist.items()
    }


# ---------------------------------------------------------------- reporting


def format_value(metric: str, value: float, steps: int) -> str:
    if metric == "steps_to_target":
        return f">{steps}" if math.isinf(value) else f"{value:.0f}"
    return f"{value:.0f}" if metric == "wall_s" else f"{value:.3f}"


def table_rows(table: Mapping[str, Mapping[str, Any]], steps: int) -> list[list[str]]:
    """One row per scheduler: name, runs reaching the target, then 'median (min-max) ratio' per metric."""
    rows = []
    for scheduler, row in table.items():
        cells = [scheduler, f"{row['reached']}/{row['seeds']}"]
        for metric in METRICS:
            m = row[metric]
            ratio = f"{m['ratio_to_uniform']:.2f}x" if m["ratio_to_uniform"] is not None else (
                f"{m['ratio_bound']}x" if m.get("ratio_bound") else "n/a")
            lo, hi = (format_value(metric, m[k], steps) for k in ("min", "max"))
            cells.append(f"{format_value(metric, m['median'], steps)} ({lo}-{hi}) {ratio}")
        rows.append(cells)
    return rows


def markdown_table(table: Mapping[str, Mapping[str, Any]], steps: int, hardest: Sequence[str]) -> str:
    headers = ["scheduler", "reached target"] + [HEADERS[m] for m in METRICS]
    headers[METRICS.index("final_hardest") + 2] = f"final {'/'.join(hardest)}"
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(table, steps)]
    return "\n".join(lines) + "\n"


def markdown_diagnostics(diag: Mapping[str, Mapping[str, Any]]) -> str:
    """Per scheduler: probability and mean |advantage| of each distribution per quarter of training."""
    out = []
    for scheduler, dists in diag.items():
        out.append(f"\n{scheduler}: probability / mean |advantage| per quarter of training (mean over seeds)\n")
        out.append("| distribution | Q1 | Q2 | Q3 | Q4 |\n|---|---|---|---|---|")
        for name, d in dists.items():
            cells = [
                f"{p:.2f} / {'-' if a is None else f'{a:.2f}'}" if p is not None else "-"
                for p, a in zip(d["probability"], d["abs_advantage"])
            ]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def print_table(table: Mapping[str, Mapping[str, Any]], steps: int, hardest: Sequence[str], target: float) -> None:
    from rich.table import Table

    t = Table(title=f"median (min-max over seeds) and ratio of medians to uniform; target mean reward {target}")
    for header in ["scheduler", "reached"] + [HEADERS[m] for m in METRICS]:
        t.add_column(header.replace("final hardest", f"final {'/'.join(hardest)}"))
    for cells in table_rows(table, steps):
        t.add_row(*cells)
    human_console().print(t)


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    import platform

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.node()}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "command": " ".join(["python", "benchmarks/curriculum.py", *argv]),
        "git_revision": git("rev-parse", "--short", "HEAD") + (" (dirty)" if git("status", "--porcelain") else ""),
    }


def write_plot(run_dirs: Sequence[Path], path: Path) -> str | None:
    """`dump inspect`'s comparison plot of the given runs; returns the error text on failure."""
    cmd = [sys.executable, "-m", "dumpcli", "inspect", *map(str, run_dirs), "--plot", str(path)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    return None if result.returncode == 0 else (result.stderr.strip() or f"exit {result.returncode}")
