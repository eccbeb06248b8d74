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
from dumpcli.inspect.summary import curve_auc, eval_mean_curve
from dumpcli.output import human_console
from dumpcli.rundir import RunDir

REPO = Path(__file__).resolve().parent.parent
METRICS = ("steps_to_target", "groups_to_target", "auc", "final_reward", "final_sampled", "final_hardest", "zero_signal_share", "wall_s")
HEADERS = {
    "steps_to_target": "steps to target",
    "groups_to_target": "groups generated to target",
    "auc": "AUC (mean {measure})",
    "final_reward": "final {measure}",
    "final_sampled": "final sampled accuracy",
    "final_hardest": "final hardest",
    "zero_signal_share": "prompts without signal",
    "wall_s": "wall s",
}
BOOTSTRAP = 2000  # resamples of the seeds for the 95% intervals


@dataclass
class RunSummary:
    scheduler: str  # the arm: a scheduler, possibly with options or a trainer setting (e.g. dynamic sampling)
    seed: int
    steps_to_target: float  # math.inf when the target was never reached
    auc: float
    final_reward: float  # the final mean eval value of the benchmark's measure (reward or accuracy)
    final_hardest: float
    wall_s: float
    zero_signal_share: float | None = None  # prompts drawn from groups whose rewards were all equal / all prompts
    final_sampled: float | None = None  # final mean sampled accuracy (k samples at the training temperature), if evaluated
    groups_to_target: float | None = None  # prompt groups generated (every generation round) up to the target; inf if never


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
    target: float, wall_s: float, measure: str = "reward", metrics_rows: Sequence[Mapping[str, Any]] = (),
) -> RunSummary:
    """One run's outcome on the mean over distributions of eval `measure` ("reward" or "accuracy")."""
    curve = eval_mean_curve(list(eval_rows), measure)
    if not curve:
        raise DumpError(f"run {run_name(scheduler, seed)} has no evaluations; set run.eval_every below the step budget")
    reached = [step for step, reward in curve if reward >= target]
    to_target = float(reached[0]) if reached else math.inf
    steps, rewards = zip(*curve)
    # AUC as area per step (a mean reward, comparable across budgets): the one definition inspect uses too
    auc = curve_auc(np.array(steps), np.array(rewards))[1]
    last = eval_rows[-1]["distributions"]
    final_hardest = sum(last[name][measure] for name in hardest) / len(hardest)
    # Greedy accuracy alone can hide what GRPO trains on (samples at the training temperature): report both.
    sampled = eval_mean_curve([eval_rows[-1]], "sampled_accuracy")
    return RunSummary(
        scheduler=scheduler, seed=seed, steps_to_target=to_target,
        auc=auc, final_reward=rewards[-1], final_hardest=final_hardest, wall_s=wall_s,
        zero_signal_share=zero_signal_share(metrics_rows), final_sampled=sampled[0][1] if sampled else None,
        groups_to_target=groups_to_target(metrics_rows, to_target),
    )


def groups_to_target(metrics_rows: Sequence[Mapping[str, Any]], steps: float) -> float | None:
    """Prompt groups generated in steps 1..`steps` (inf when the target was never reached): the
    generation cost of reaching the target, which steps alone hide for arms that generate several
    rounds a step (dynamic sampling). None without metrics rows."""
    if not metrics_rows:
        return None
    if math.isinf(steps):
        return math.inf
    # Each drawn prompt is one group of G completions; `prompts` counts every generation round's draws.
    return float(sum(d["prompts"] for row in metrics_rows if row["step"] <= steps for d in row["distributions"].values()))


def zero_signal_share(metrics_rows: Sequence[Mapping[str, Any]]) -> float | None:
    """Share of the prompts drawn whose group carried no signal (all rewards equal, advantage 0):
    the prompts a curriculum wastes. None for runs logged before metrics had zero_std_prompts."""
    drawn = zero = 0
    for row in metrics_rows:
        for d in row["distributions"].values():
            if "zero_std_prompts" not in d:
                return None
            drawn, zero = drawn + d["prompts"], zero + d["zero_std_prompts"]
    return zero / drawn if drawn else None


def aggregate(
    summaries: Sequence[RunSummary], schedulers: Sequence[str], budget: int | None = None
) -> dict[str, dict[str, Any]]:
    """Per scheduler and metric: median, min, max over seeds and the ratio of medians to uniform.

    When exactly one of the two steps-to-target medians is `inf` (never reached within `budget`
    steps), the ratio has only a bound: `ratio_bound` "<x" or ">x".
    """
    table: dict[str, dict[str, Any]] = {}
    values_of: dict[tuple[str, str], list[float]] = {}
    for scheduler in schedulers:
        runs = [s for s in summaries if s.scheduler == scheduler]
        row: dict[str, Any] = {"seeds": len(runs), "reached": sum(math.isfinite(r.steps_to_target) for r in runs)}
        for metric in METRICS:
            values = [v for r in runs if (v := getattr(r, metric)) is not None]
            values_of[scheduler, metric] = values
            row[metric] = ({"median": _median(values), "min": min(values), "max": max(values),
                            "ci95": bootstrap_median_ci(values)} if values else
                           {"median": None, "min": None, "max": None, "ci95": None})
        table[scheduler] = row
    for scheduler, row in table.items():
        for metric in METRICS:
            uniform = table["uniform"][metric]["median"]
            row[metric]["ratio_to_uniform"] = _ratio(row[metric]["median"], uniform) if uniform is not None else None
            row[metric]["ratio_ci95"] = bootstrap_ratio_ci(values_of[scheduler, metric], values_of["uniform", metric])
        row["steps_to_target"]["ratio_bound"] = _ratio_bound(
            row["steps_to_target"]["median"], table["uniform"]["steps_to_target"]["median"], budget
        )
    return table


def _bootstrap_medians(values: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """Medians of BOOTSTRAP resamples (with replacement) of `values`; inf (never reached) stays inf."""
    data = np.asarray(values, dtype=np.float64)
    samples = data[rng.integers(len(data), size=(BOOTSTRAP, len(data)))]
    return np.sort(samples, axis=1)[:, (len(data) - 1) // 2: len(data) // 2 + 1].mean(axis=1)


def bootstrap_median_ci(values: Sequence[float], seed: int = 0) -> list[float] | None:
    """95% percentile-bootstrap interval of the median over seeds (None for fewer than 2 seeds)."""
    if len(values) < 2:
        return None
    medians = _bootstrap_medians(values, np.random.default_rng(seed))
    return [float(np.quantile(medians, 0.025, method="lower")), float(np.quantile(medians, 0.975, method="higher"))]


def bootstrap_ratio_ci(values: Sequence[float], uniform: Sequence[float], seed: int = 0) -> list[float] | None:
    """95% percentile-bootstrap interval of median(values) / median(uniform), seeds resampled in both arms.

    A resample whose median is inf (never reached) makes the ratio inf or 0; an interval end that is
    not finite is reported as None.
    """
    if len(values) < 2 or len(uniform) < 2:
        return None
    rng = np.random.default_rng(seed)
    a, b = _bootstrap_medians(values, rng), _bootstrap_medians(uniform, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(np.isinf(a) & np.isinf(b), np.nan, a / b)
    ratios = ratios[~np.isnan(ratios)]
    if not len(ratios):
        return None
    lo, hi = (float(np.quantile(ratios, q, method=m)) for q, m in ((0.025, "lower"), (0.975, "higher")))
    return [lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None]


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
        rows = RunDir(runs_dir / run_name(scheduler, seed)).read_metrics()
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


def format_value(metric: str, value: float | None, steps: int) -> str:
    if value is None:
        return "?"
    if metric == "steps_to_target":
        return f">{steps}" if math.isinf(value) else f"{value:.0f}"
    if metric == "groups_to_target":
        return "never" if math.isinf(value) else f"{value:.0f}"
    return f"{value:.0f}" if metric == "wall_s" else f"{value:.3f}"


def table_rows(table: Mapping[str, Mapping[str, Any]], steps: int) -> list[list[str]]:
    """One row per arm: name, runs reaching the target, then per metric
    'median (min-max) [95% CI of the median] ratio-to-uniform [95% CI of the ratio]'."""
    rows = []
    for scheduler, row in table.items():
        cells = [scheduler, f"{row['reached']}/{row['seeds']}"]
        for metric in METRICS:
            m = row[metric]
            if m["median"] is None:
                cells.append("n/a")
                continue
            ratio = f"{m['ratio_to_uniform']:.2f}x" if m["ratio_to_uniform"] is not None else (
                f"{m['ratio_bound']}x" if m.get("ratio_bound") else "n/a")
            if m.get("ratio_ci95") and scheduler != "uniform":
                lo_r, hi_r = (f"{v:.2f}" if v is not None else "?" for v in m["ratio_ci95"])
                ratio += f" [{lo_r}, {hi_r}]"
            lo, hi = (format_value(metric, m[k], steps) for k in ("min", "max"))
            ci = " [{}, {}]".format(*(format_value(metric, v, steps) for v in m["ci95"])) if m.get("ci95") else ""
            cells.append(f"{format_value(metric, m['median'], steps)} ({lo}-{hi}){ci} {ratio}")
        rows.append(cells)
    return rows


def headers_for(hardest: Sequence[str], measure: str = "reward") -> list[str]:
    headers = ["arm", "reached target"] + [HEADERS[m].format(measure=measure) for m in METRICS]
    headers[METRICS.index("final_hardest") + 2] = f"final {'/'.join(hardest)}"
    return headers


def markdown_table(table: Mapping[str, Mapping[str, Any]], steps: int, hardest: Sequence[str], measure: str = "reward") -> str:
    headers = headers_for(hardest, measure)
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


def print_table(table: Mapping[str, Mapping[str, Any]], steps: int, hardest: Sequence[str], target: float,
                measure: str = "reward") -> None:
    from rich.table import Table

    t = Table(title=f"median (min-max over seeds) [bootstrap 95% CI], ratio of medians to uniform [95% CI]; "
                    f"target mean eval {measure} {target}")
    for header in headers_for(hardest, measure):
        t.add_column(header)
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


def write_heatmaps(runs_dir: Path, seeds_of: Mapping[str, Sequence[int]], path: Path) -> str | None:
    """One panel per arm: the scheduler's probability of each distribution (rows, easy at the top)
    over steps (columns), averaged over seeds. Returns the error text on failure."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = []
        for arm, seeds in seeds_of.items():
            rows = [RunDir(runs_dir / run_name(arm, k)).read_metrics() for k in seeds]
            steps = min(len(r) for r in rows)
            if not steps:
                continue
            names = list(rows[0][0]["distributions"])
            grid = np.mean([[[row[t]["distributions"][n]["probability"] for t in range(steps)] for n in names]
                            for row in rows], axis=0)  # [K, steps]
            panels.append((arm, names, grid))
        if not panels:
            return "no finished runs"
        fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.2 + 0.28 * len(panels[0][1]) * len(panels)), squeeze=False)
        for ax, (arm, names, grid) in zip(axes[:, 0], panels):
            image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=max(0.5, float(grid.max())),
                              extent=(0.5, grid.shape[1] + 0.5, len(names) - 0.5, -0.5))
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.set_title(f"{arm}: sampling probability per distribution (mean over {len(seeds_of[arm])} seeds)", fontsize=9)
            fig.colorbar(image, ax=ax, fraction=0.02)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    except (OSError, ValueError, KeyError, IndexError) as e:
        return f"{type(e).__name__}: {e}"
    return None
