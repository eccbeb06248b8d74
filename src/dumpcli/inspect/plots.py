"""`dump inspect --plot`: one figure of where the scheduler sent prompts and what came of it.

Rows: the scheduler's sampling probabilities as a stacked area (easy at the bottom, hard on top,
a sequential colormap so the easy-to-hard order reads at a glance), the smoothed training reward
per distribution, and the eval curves. Several runs get one column each, axes shared per row.
matplotlib is imported here only, with the Agg backend, so no display is needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.inspect.summary import eval_measure, run_labels, smooth
from dumpcli.rundir import Run, missing_dist, natural_key

MAX_POINTS = 1500  # per curve; a 100k-step run is drawn from bin means, not every step
COLORMAP = "viridis_r"  # sequential: light = easy, dark = hard
LEGEND_IN = 2.0  # inches kept on the right for the legend


def plot_runs(runs: list[Run], out: Path, *, window: int = 20) -> Path:
    """Draw `runs` (one column each) to the PNG `out`; returns `out`."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out = check_png_path(out)
    names = _all_names(runs)
    colors = dict(zip(names, plt.get_cmap(COLORMAP)(np.linspace(0.08, 0.92, len(names)))))
    ncols = len(runs)
    fig, axes = plt.subplots(
        3, ncols, figsize=((8.0 if ncols == 1 else 4.4 * ncols) + LEGEND_IN, 9.5), sharex="col" if ncols == 1 else True, sharey="row",
        squeeze=False, gridspec_kw={"height_ratios": [1.2, 1, 1]},
    )  # fmt: skip
    measure = eval_measure([e for r in runs for e in r.evals])
    for col, (run, label) in enumerate(zip(runs, run_labels(runs))):
        _draw_probabilities(axes[0, col], run, names, colors)
        _draw_rewards(axes[1, col], run, names, colors, window)
        _draw_evals(axes[2, col], run, names, colors, measure)
        axes[0, col].set_title(_title(run, label), fontsize=10)
        axes[2, col].set_xlabel("step")
    axes[0, 0].set_ylabel("sampling probability")
    axes[2, 0].set_ylabel(f"eval {measure}")
    for ax in axes.flat:
        ax.grid(alpha=0.25, linewidth=0.6)
        ax.spines[["top", "right"]].set_visible(False)
    right = 1 - LEGEND_IN / fig.get_figwidth()
    fig.tight_layout(rect=(0, 0, right, 1))
    _legend(fig, names, colors, runs, right)
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=110)
        tmp.replace(out)  # atomic: a reader never sees half a PNG
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DumpError(f"cannot write --plot {out} ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return out


def check_png_path(out: Path) -> Path:
    """`out` if it names a PNG that can be written; checked before any work so a typo fails at once."""
    from dumpcli.fsutil import check_can_create

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise DumpError(f"--plot writes PNG; give a file name ending in .png (got {out.name})")
    if out.is_dir():
        raise DumpError(f"--plot {out} is a directory; give a file name such as {out / 'runs.png'}")
    check_can_create(out, "--plot")
    return out


def _all_names(runs: list[Run]) -> list[str]:
    difficulty: dict[str, float] = {}
    for run in runs:
        for name in run.distribution_names():
            difficulty.setdefault(name, run.difficulty.get(name, float("inf")))
    return sorted(difficulty, key=lambda n: (difficulty[n], natural_key(n)))


def _title(run: Run, label: str) -> str:
    sched = run.config.get("scheduler")
    name = sched.get("name") if isinstance(sched, dict) else sched
    total = run.total_steps
    name = name or run.metrics.scheduler or "?"
    return (label if label == name else f"{label} ({name})") + f", step {run.step}" + (f"/{total}" if total else "")


def _bins(n: int) -> np.ndarray:
    """Start index of each bin so that at most MAX_POINTS points are drawn."""
    return np.arange(0, n, max(1, -(-n // MAX_POINTS)))


def _bin_mean(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(values)
    sums = np.add.reduceat(np.where(ok, values, 0.0), starts)
    counts = np.add.reduceat(ok.astype(np.float64), starts)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _draw_probabilities(ax: Any, run: Run, names: list[str], colors: dict[str, Any]) -> None:
    m = run.metrics
    starts = _bins(len(m))
    steps = _bin_mean(m.columns["step"], starts)
    layers = [np.nan_to_num(_bin_mean(m.dists.get(n, missing_dist(len(m)))["probability"], starts)) for n in names]
    # step="mid": a step's probability holds for that step, so a sequential switch is a clean edge
    edges = 0.3 if len(steps) <= 200 else 0.0  # white seams help few steps, but speckle thousands
    ax.stackplot(steps, layers, colors=[colors[n] for n in names], linewidth=edges, edgecolor="white", step="mid")
    ax.set_ylim(0, 1)
    ax.margins(x=0)


def _draw_rewards(ax: Any, run: Run, names: list[str], colors: dict[str, Any], window: int) -> None:
    m = run.metrics
    span = max(window, len(m) // 100)  # long runs: smooth over ~1% of the run
    starts = _bins(len(m))
    steps = m.columns["step"][starts]
    for n in names:
        cols = m.dists.get(n)
        if cols is None or not (cols["prompts"] > 0).any():
            continue
        ax.plot(steps, smooth(cols["reward"], span)[starts], color=colors[n], linewidth=1.4)
    ax.plot(steps, smooth(m.columns["reward"], span)[starts], color="black", linewidth=2.0, linestyle="--")
    ax.set_ylabel(f"train reward\n(mean of last {span} steps)" if ax.get_subplotspec().is_first_col() else "")


def _draw_evals(ax: Any, run: Run, names: list[str], colors: dict[str, Any], key: str) -> None:
    evals = run.evals
    if not evals:
        ax.text(0.5, 0.5, "no evaluations yet", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return
    steps = [e["step"] for e in evals]
    dots = {"marker": "o", "markersize": 3} if len(evals) <= 40 else {}
    for n in names:
        ys = [(e.get("distributions") or {}).get(n, {}).get(key) for e in evals]
        pts = [(x, y) for x, y in zip(steps, ys) if isinstance(y, (int, float))]
        if pts:
            ax.plot(*zip(*pts), color=colors[n], linewidth=1.4, **dots)
    overall = [(x, e.get(key)) for x, e in zip(steps, evals) if isinstance(e.get(key), (int, float))]
    if overall:
        ax.plot(*zip(*overall), color="black", linewidth=2.0, linestyle="--", **({"marker": "s", "markersize": 3.5} if dots else {}))


def _legend(fig: Any, names: list[str], colors: dict[str, Any], runs: list[Run], left: float) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    difficulty = {n: d for r in runs for n, d in r.difficulty.items()}
    handles = [Patch(color=colors[n], label=n + (f"  (d={difficulty[n]:g})" if n in difficulty else "")) for n in reversed(names)]
    handles.append(Line2D([], [], color="black", linestyle="--", linewidth=2, label="all (batch / eval mean)"))
    fig.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(left, 0.97), frameon=False, fontsize=9,
        title="distribution\n(hardest on top)", title_fontsize=9, alignment="left",
    )  # fmt: skip
