"""Every summary of a run dir, defined once: pure functions, no printing.

    run = load_run(Path("runs/ucb"))
    summarize_run(run, window=20)                 # the dict `dump inspect --json` prints
    compare_runs([run_a, run_b], target=1.0)      # several runs side by side
    start_end_summary(RunDir(path))               # `dump train`'s closing table
    curve_auc(steps, values)                      # AUC, for inspect and the curriculum benchmark

The JSON these return is documented in docs/inspect-json.md; reading is in `dumpcli.rundir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.rundir import Metrics, Run, RunDir, RunReader, missing_dist, natural_key

SCHEMA_VERSION = 1  # of the JSON below; bump when a key changes meaning or goes away
DEFAULT_RECENT_PROMPTS = 32  # per-distribution window when the config does not give the scheduler's


def load_run(path: Path) -> Run:
    """Read a finished or running run dir; DumpError if it is not one, is newer, or has no steps yet."""
    path = Path(path)
    if not path.is_dir():
        raise DumpError(f"{path} is not a directory; pass a run dir written by `dump train` (e.g. runs/ucb)")
    if not (path / "config.yaml").is_file():
        raise DumpError(f"{path} is not a run dir (no config.yaml){_hint_children(path)}")
    reader = RunReader(path)
    reader.poll()
    if not len(reader.metrics):
        raise DumpError(f"{path} has no steps yet (metrics.jsonl is empty); wait for the first step or use --follow")
    return reader.run()


def load_runs(paths: list[Path]) -> list[Run]:
    """`load_run` for each path, in order."""
    return [load_run(p) for p in paths]


def _hint_children(path: Path) -> str:
    runs = sorted(str(p) for p in path.iterdir() if (p / "config.yaml").is_file())
    if not runs:
        return "; pass a dir written by `dump train`"
    shown = " ".join(runs[:6]) + (" ..." if len(runs) > 6 else "")
    return f"; it holds run dirs, pass them instead: dump inspect {shown}"


def summarize_run(run: Run, *, window: int = 20, target: float | None = None, upto: int | None = None) -> dict[str, Any]:
    """Everything `dump inspect run/` shows, as one JSON-ready dict (as of row `upto`, default all)."""
    m = _head(run.metrics, upto)
    cols, n = m.columns, len(m)
    recent = slice(max(0, n - window), n)
    total = run.total_steps
    step = int(cols["step"][-1]) if n else None
    names = run.distribution_names()
    recent_prompts = _recent_prompts(run.config)
    dists = [_dist_summary(name, m, run, recent_prompts) for name in names]
    drawn = sum(d["prompts"] for d in dists)
    for d in dists:
        d["prompt_share"] = d["prompts"] / drawn if drawn else None
    ranked_by, best, worst = _best_worst(dists)
    auc, mean = reward_auc(m)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "name": run.name,
        "path": str(run.path),
        "scheduler": scheduler_info(run.config, m.scheduler),
        "model": _model_name(run.config),
        "step": step,
        "total_steps": total,
        "progress": step / total if step is not None and total else None,
        "finished": bool(total is not None and step is not None and step >= total),
        "elapsed_s": _last(cols["elapsed_s"]),
        "tokens_per_second": _nanmean(cols["tokens_per_second"][recent]),
        "step_time_s": _step_time(cols, window),
        "eta_s": _eta(cols, window, total),
        "reward": _nanmean(cols["reward"][recent]),
        "window_steps": window,
        "recent_prompts": recent_prompts,
        "target": target,
        "steps_to_target": steps_to_target(m, target, window) if target is not None else None,
        "reward_auc": auc,
        "mean_reward": mean,
        "checkpoint_step": run.checkpoint_step,
        "eval": _eval_summary(_evals_upto(run.evals, step)),
        "ranked_by": ranked_by,
        "best": best,
        "worst": worst,
        "distributions": dists,
    }


def compare_runs(runs: list[Run], *, window: int = 20, target: float | None = None) -> dict[str, Any]:
    """Several runs side by side: each run's summary, and per distribution each run's final eval and prompts."""
    labels = run_labels(runs)
    summaries = [summarize_run(r, window=window, target=target) | {"name": label} for r, label in zip(runs, labels)]
    names = sorted(
        {d["name"]: d["difficulty"] for s in summaries for d in s["distributions"]}.items(),
        key=lambda kv: (kv[1] if kv[1] is not None else float("inf"), natural_key(kv[0])),
    )
    per_dist = []
    for name, difficulty in names:
        row: dict[str, Any] = {"name": name, "difficulty": difficulty, "final_eval": {}, "prompts": {}}
        for s in summaries:
            d = next((d for d in s["distributions"] if d["name"] == name), None)
            final = None if d is None or d["eval_accuracy"] is None and d["eval_reward"] is None else d
            row["final_eval"][s["name"]] = (
                {"step": s["eval"]["step"], "accuracy": final["eval_accuracy"], "reward": final["eval_reward"]} if final else None
            )
            row["prompts"][s["name"]] = d["prompts"] if d else 0
        per_dist.append(row)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "comparison",
        "target": target,
        "window_steps": window,
        "runs": summaries,
        "distributions": per_dist,
    }


def eval_measure(evals: list[dict[str, Any]]) -> str:
    """"accuracy" when evaluations tell distributions or steps apart by it, else "reward" (e.g. all 0 early on)."""
    values = {
        v.get("accuracy")
        for e in evals
        for v in [e, *(e.get("distributions") or {}).values()]
        if isinstance(v, dict) and isinstance(v.get("accuracy"), (int, float))
    }
    return "accuracy" if len(values) > 1 else "reward"


def run_labels(runs: list[Run]) -> list[str]:
    """Short unique names: the dir name, or the path where two runs share a dir name."""
    names = [r.name for r in runs]
    return [n if names.count(n) == 1 else str(r.path) for r, n in zip(runs, names)]


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last `window` entries, ignoring NaN (NaN where the window has none)."""
    ok = ~np.isnan(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    num, den = sums[idx] - sums[lo], counts[idx] - counts[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def steps_to_target(m: Metrics, target: float, window: int) -> int | None:
    """First step whose trailing `window`-step mean training reward reaches `target` (None: not yet)."""
    if not len(m):
        return None
    hit = np.flatnonzero(smooth(m.columns["reward"], window) >= target)
    return int(m.columns["step"][hit[0]]) if len(hit) else None


def curve_auc(steps: np.ndarray, values: np.ndarray) -> tuple[float | None, float | None]:
    """AUC of a curve over steps: the trapezoid area, and that area per step (the curve's mean level).

    The one definition of AUC: the training reward in `dump inspect`, the eval curve in the
    curriculum benchmark. NaN points are dropped; one point has no area and its value as the level.
    """
    steps, values = np.asarray(steps, dtype=np.float64), np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    steps, values = steps[ok], values[ok]
    if len(values) < 2:
        return None, (float(values[0]) if len(values) else None)
    area = float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(steps)))
    span = float(steps[-1] - steps[0])
    return area, (area / span if span else None)


def reward_auc(m: Metrics) -> tuple[float | None, float | None]:
    """`curve_auc` of the training mean reward."""
    return curve_auc(m.columns["step"], m.columns["reward"])


def eval_mean_curve(evals: list[dict[str, Any]], key: str = "reward") -> list[tuple[int, float]]:
    """(step, unweighted mean over distributions of `key`), one point per evaluation."""
    curve = []
    for row in evals:
        values = [d[key] for d in row["distributions"].values() if d.get(key) is not None]
        if values:
            curve.append((int(row["step"]), sum(values) / len(values)))
    return curve


def _head(m: Metrics, upto: int | None) -> Metrics:
    if upto is None or upto >= len(m):
        return m
    return Metrics(
        {k: v[:upto] for k, v in m.columns.items()},
        {n: {k: v[:upto] for k, v in cols.items()} for n, cols in m.dists.items()},
        m.scheduler,
    )


def _dist_summary(name: str, m: Metrics, run: Run, recent_prompts: int) -> dict[str, Any]:
    cols = m.dists.get(name) or missing_dist(len(m))
    prompts = cols["prompts"]
    drawn = np.flatnonzero(prompts > 0)
    # The scheduler's window is the last W completions of this distribution, however long ago drawn.
    before = np.cumsum(prompts[drawn][::-1]) - prompts[drawn][::-1]
    recent = drawn[::-1][before < recent_prompts]
    last_eval = _last_eval_for(name, _evals_upto(run.evals, _last(m.columns["step"])))
    first_eval = _last_eval_for(name, run.evals[:1]) if run.evals else {}
    return {
        "name": name,
        "difficulty": run.difficulty.get(name),
        "probability": _last(cols["probability"]),
        "prompts": int(prompts.sum()),
        "prompt_share": None,
        "recent_reward": _weighted(cols["reward"][recent], prompts[recent]),
        "recent_abs_advantage": _weighted(cols["abs_advantage"][recent], prompts[recent]),
        "eval_accuracy": last_eval.get("accuracy"),
        "eval_reward": last_eval.get("reward"),
        "eval_accuracy_change": _change(last_eval.get("accuracy"), first_eval.get("accuracy")),
        "eval_reward_change": _change(last_eval.get("reward"), first_eval.get("reward")),
    }


def _best_worst(dists: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """Rank on the first of eval accuracy, eval reward, recent training reward that tells them apart."""
    keys = ("eval_accuracy", "eval_reward", "recent_reward")
    for i, key in enumerate(keys):
        scored = [d for d in dists if d[key] is not None]
        if len(scored) >= 2 and len({d[key] for d in scored}) > 1:
            ties = keys[i + 1 :]
            order = sorted(scored, key=lambda d: (d[key], *(d[t] if d[t] is not None else 0.0 for t in ties)))
            return key, order[-1]["name"], order[0]["name"]
    return None, None, None


def _eval_summary(evals: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not evals:
        return None
    first, last = evals[0], evals[-1]
    return {
        "step": last.get("step"),
        "accuracy": last.get("accuracy"),
        "reward": last.get("reward"),
        "first_step": first.get("step"),
        "accuracy_change": _change(last.get("accuracy"), first.get("accuracy")),
        "reward_change": _change(last.get("reward"), first.get("reward")),
        "evaluations": len(evals),
    }


def _evals_upto(evals: list[dict[str, Any]], step: float | None) -> list[dict[str, Any]]:
    return evals if step is None else [e for e in evals if isinstance(e.get("step"), (int, float)) and e["step"] <= step]


def _last_eval_for(name: str, evals: list[dict[str, Any]]) -> dict[str, Any]:
    for e in reversed(evals):
        d = (e.get("distributions") or {}).get(name)
        if isinstance(d, dict):
            return d
    return {}


def scheduler_info(config: dict[str, Any], logged: str | None = None) -> dict[str, Any]:
    """Scheduler name and options from the config (`logged`: the name metrics.jsonl gives)."""
    section = config.get("scheduler")
    if isinstance(section, dict):
        name = section.get("name") or logged
        options = section.get("options", {k: v for k, v in section.items() if k != "name"})
    else:
        name, options = (section if isinstance(section, str) else logged), {}
    return {"name": name, "options": options if isinstance(options, dict) else {}}


def _model_name(config: dict[str, Any]) -> str | None:
    model = config.get("model")
    if isinstance(model, dict):
        value = model.get("name") or model.get("name_or_path") or model.get("path")
        return str(value) if value is not None else None
    return str(model) if model is not None else None


def _recent_prompts(config: dict[str, Any]) -> int:
    """The scheduler's learnability window in prompts (its window in completions / group size)."""
    info = scheduler_info(config)
    window = info["options"].get("window")
    if window is None and info["name"]:
        window = _default_option(info["name"], "window")
    group = (config.get("grpo") or {}).get("num_generations")
    if isinstance(window, int) and isinstance(group, int) and window > 0 and group > 0:
        return max(1, -(-window // group))
    return DEFAULT_RECENT_PROMPTS


def _default_option(scheduler: str, key: str) -> Any:
    """An option the config left out is the installed scheduler's default (None if not installed)."""
    from dumpcli.config import resolve_options

    try:
        return resolve_options(scheduler, {}).get(key)
    except DumpError:
        return None


def _step_time(cols: dict[str, np.ndarray], window: int) -> float | None:
    """Wall time per step over the recent window, evals and checkpoints included (that is what ETA needs)."""
    elapsed, steps = cols["elapsed_s"], cols["step"]
    k = min(window, len(steps) - 1)
    if k >= 1 and steps[-1] > steps[-1 - k] and not np.isnan(elapsed[-1] - elapsed[-1 - k]):
        return float((elapsed[-1] - elapsed[-1 - k]) / (steps[-1] - steps[-1 - k]))
    return _nanmean(cols["step_time_s"][-window:])


def _eta(cols: dict[str, np.ndarray], window: int, total: int | None) -> float | None:
    per_step = _step_time(cols, window)
    if total is None or per_step is None or not len(cols["step"]):
        return None
    return max(0.0, (total - float(cols["step"][-1])) * per_step)


def _weighted(values: np.ndarray, weights: np.ndarray) -> float | None:
    ok = ~np.isnan(values) & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok])) if ok.any() else None


def _nanmean(values: np.ndarray) -> float | None:
    ok = values[~np.isnan(values)]
    return float(ok.mean()) if len(ok) else None


def _last(values: np.ndarray) -> float | None:
    return None if not len(values) or np.isnan(values[-1]) else float(values[-1])


def _change(last: Any, first: Any) -> float | None:
    return float(last - first) if isinstance(last, (int, float)) and isinstance(first, (int, float)) else None


EVAL_MEASURES = ("accuracy", "sampled_accuracy", "reward")  # what each evaluation reports, headline first


def start_end_summary(run: RunDir) -> dict[str, Any]:
    """`dump train`'s closing table: per distribution, eval accuracy (greedy and sampled) and reward
    before -> after training, prompts drawn, training reward early -> late.

    Early/late are the means over the first and last quarter of the steps that drew from the
    distribution. Accuracy leads: a reward with format credit can rise while answers get worse.
    `rose_on` / `fell_on` list the distributions whose greedy accuracy went up / down between the
    first and the last evaluation (`rose_by` "eval"); without a second evaluation they compare
    training reward, early vs late (`rose_by` "train").
    """
    metrics, evals = run.read_metrics(), run.read_evals()
    names = list(metrics[-1]["distributions"]) if metrics else list(evals[-1]["distributions"]) if evals else []
    reward_first, reward_last = early_late([m["reward"] for m in metrics])
    out: dict[str, Any] = {"run": str(run.path), "steps": metrics[-1]["step"] if metrics else 0,
                           "elapsed_s": metrics[-1]["elapsed_s"] if metrics else 0.0,
                           "reward_first": reward_first, "reward_last": reward_last, "distributions": {}}
    first_eval, last_eval = (evals[0], evals[-1]) if evals else ({}, {})
    for key in EVAL_MEASURES:  # means over every evaluated row
        out[f"eval_{key}_first"], out[f"eval_{key}_last"] = first_eval.get(key), last_eval.get(key)
    by_eval = len(evals) > 1
    rose, fell = [], []
    for name in names:
        drawn = [m["distributions"][name] for m in metrics if m["distributions"].get(name, {}).get("prompts")]
        first, last = early_late([d["reward"] for d in drawn])
        row = {"prompts": sum(d["prompts"] for d in drawn), "train_reward_first": first, "train_reward_last": last,
               "probability_last": metrics[-1]["distributions"][name]["probability"] if metrics else None}
        for key in EVAL_MEASURES:
            row[f"eval_{key}_first"] = (first_eval.get("distributions") or {}).get(name, {}).get(key)
            row[f"eval_{key}_last"] = (last_eval.get("distributions") or {}).get(name, {}).get(key)
        a, b = (row["eval_accuracy_first"], row["eval_accuracy_last"]) if by_eval else (first, last)
        if a is not None and b is not None and b != a:
            (rose if b > a else fell).append(name)
        out["distributions"][name] = row
    out["rose_on"], out["fell_on"] = rose, fell
    out["rose_by"] = "eval" if by_eval else "train"
    return out


def early_late(values: list[float]) -> tuple[float | None, float | None]:
    """Means of the first and of the last quarter of `values` (at least one value each)."""
    if not values:
        return None, None
    k = max(1, len(values) // 4)
    return sum(values[:k]) / k, sum(values[-k:]) / k
