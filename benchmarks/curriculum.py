"""Curriculum benchmark: the same model on the same mixture with each scheduler, S seeds, one budget.

    .venv/bin/python benchmarks/curriculum.py examples/curriculum/ladder-tiny.yaml --out bench/ladder-tiny
    nohup .venv/bin/python benchmarks/curriculum.py examples/curriculum/smollm2-arith.yaml \
        --out bench/smollm2-arith > bench/smollm2-arith.log 2>&1 &
    .venv/bin/python benchmarks/curriculum.py examples/curriculum/ladder-tiny.yaml --out /tmp/b \
        --seeds 0 --schedulers ucb,uniform --steps 4 --json        # a smoke run

It prepares the benchmark's dataset once (`dump prepare`), trains one run per (scheduler, seed)
with `dump train` in subprocesses (`--jobs` at once, one thread each), then prints one table:
per scheduler, the median (min-max over seeds) of steps to reach the target mean eval reward,
area under the mean eval reward curve, final mean eval reward, final eval reward on the hardest
distribution and wall time, each with its ratio to uniform. "Mean eval reward" is the unweighted
mean over distributions of `eval.jsonl`'s per-distribution rewards. It also writes the
comparison plot of `dump inspect` (seed 0 of every scheduler) and, to explain the result, the
scheduler probabilities and mean |advantage| per distribution over training.

Finished runs are reused (a `.done.json` beside each run dir, only if its training config is
unchanged), so re-tabulating is free; `--tabulate-only` tabulates the finished runs without
training any (e.g. while a benchmark is still running); delete the out dir to start over. `--check-determinism` re-trains the first seed of every scheduler in
`<out>/recheck/` and compares its table row with the first one (wall time excepted).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_write_json, atomic_write_text
from dumpcli.output import human_console, print_json
from dumpcli.rundir import RunDir

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling module, also when imported by path
from curriculum_report import (  # noqa: E402
    METRICS, REPO, RunSummary, aggregate, diagnostics, hardest_distributions, markdown_diagnostics, markdown_table,
    print_table, provenance, run_name, summarize_run, write_heatmaps, write_plot,
)


@dataclass
class BenchConfig:
    """One benchmark configuration (examples/curriculum/*.yaml); relative paths are from that file."""

    recipe: str
    """`dump prepare` recipe name (e.g. `ladder`) or recipe file."""
    target_reward: float
    """Mean eval `measure` (over all distributions) whose first crossing is 'steps to target'."""
    measure: str = "reward"
    """What the table compares: the eval `reward` or exact-answer `accuracy` (greedy), per distribution, averaged."""
    train_config: str | None = None
    """Base `dump train` config (YAML); the harness sets data, scheduler, seed, steps and out."""
    train: dict[str, Any] = field(default_factory=dict)
    """Config sections merged over train_config (e.g. {grpo: {lr: 1e-3}})."""
    steps: int = 100
    schedulers: list[str] = field(default_factory=lambda: ["ucb", "uniform", "sequential", "thompson"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    jobs: int = 2
    """Training subprocesses at once; each runs on one thread."""
    scheduler_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Options per scheduler (e.g. {sequential: {steps: 25}}); unlisted ones run with their defaults."""
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named arms beyond plain schedulers: {name: {scheduler: ucb, options: {...}, train: {grpo: {...}}}};
    an entry of `schedulers` that names an arm runs it."""
    warm_start: dict[str, Any] | None = None
    """Warm-start tiny-random on these levels first (benchmarks/warm_start.py: levels, steps, ...) and train that."""
    focus: list[str] | None = None
    """Distributions whose final mean `measure` fills the "final ..." column (default: the hardest,
    largest `difficulty`); e.g. the levels that are learnable at step 0."""
    description: str = ""


# ---------------------------------------------------------------- configuration


def load_bench_config(path: Path, overrides: Mapping[str, Any]) -> BenchConfig:
    """Read a benchmark YAML, apply command-line overrides, resolve paths against its folder."""
    if not path.is_file():
        raise DumpError(f"benchmark config {path} does not exist; try examples/curriculum/ladder-tiny.yaml")
    raw = yaml.safe_load(path.read_text()) or {}
    known = set(BenchConfig.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise DumpError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        cfg = BenchConfig(**raw)
    except TypeError as e:
        raise DumpError(f"{path}: {e}; required keys: recipe, target_reward") from e
    for key in ("recipe", "train_config"):
        candidate = (path.parent / str(getattr(cfg, key))).resolve()
        if getattr(cfg, key) is not None and candidate.exists():
            setattr(cfg, key, str(candidate))
    if cfg.train_config is not None and not Path(cfg.train_config).is_file():
        raise DumpError(f"{path}: train_config {cfg.train_config} does not exist")
    if "uniform" not in cfg.schedulers:
        raise DumpError("the benchmark reports ratios to uniform: add uniform to --schedulers")
    if cfg.measure not in ("reward", "accuracy"):
        raise DumpError(f"{path}: measure must be reward or accuracy, got {cfg.measure!r}")
    if cfg.steps < 1 or cfg.jobs < 1 or not cfg.seeds:
        raise DumpError("steps and jobs must be >= 1 and seeds non-empty")
    return cfg


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def run_train_config(cfg: BenchConfig, data_dir: Path, run_dir: Path, arm: str, seed: int,
                     model: str | None = None) -> dict[str, Any]:
    """The `dump train` config of one run: the base config with the benchmark's settings on top."""
    base = (yaml.safe_load(Path(cfg.train_config).read_text()) or {}) if cfg.train_config else {}
    base = deep_merge(base, cfg.train)
    spec = cfg.arms.get(arm, {})
    scheduler = spec.get("scheduler", arm)
    base = deep_merge(base, spec.get("train", {}))
    if model is not None:
        base = deep_merge(base, {"model": {"name": model}})
    # Only the benchmark's own options: the base config's belong to whatever scheduler it names.
    options = {**cfg.scheduler_options.get(scheduler, {}), **spec.get("options", {})}
    merged = deep_merge(
        base,
        {
            "data": {"path": str(data_dir)},
            "grpo": {"steps": cfg.steps},
            # One thread per run: `jobs` runs share the cores without oversubscribing them.
            "run": {"seed": seed, "out": str(run_dir), "threads": 1, "progress": False},
        },
    )
    merged["scheduler"] = {"name": scheduler, "options": dict(options)}
    return merged


def focus_distributions(cfg: BenchConfig, data_dir: Path) -> list[str]:
    """The distributions of the "final ..." column: the config's `focus`, else the hardest."""
    if not cfg.focus:
        return hardest_distributions(data_dir)
    from dumpcli.data.dataset import load_dataset_dir

    names = load_dataset_dir(data_dir).names
    missing = [name for name in cfg.focus if name not in names]
    if missing:
        raise DumpError(f"focus: the dataset has no distribution {missing[0]!r}; it has: {', '.join(names)}")
    return list(cfg.focus)


# ---------------------------------------------------------------- running


def prepare_data(cfg: BenchConfig, out: Path) -> Path:
    from dumpcli.data.recipe import prepare_recipe

    data_dir = out / "data"
    if not (data_dir / "dataset.yaml").exists():
        prepare_recipe(cfg.recipe, data_dir, overwrite=False)
    return data_dir


def prepare_model(cfg: BenchConfig, data_dir: Path) -> str | None:
    """The warm-started model folder of `cfg.warm_start` (trained once, cached), or None."""
    if cfg.warm_start is None:
        return None
    from warm_start import WarmStart, warm_start

    spec = dict(cfg.warm_start)
    levels = spec.pop("levels", None)
    if not levels:
        raise DumpError("warm_start needs `levels`: the distributions to learn from")
    try:
        ws = WarmStart(str(data_dir), tuple(levels), **spec)
    except TypeError as e:
        raise DumpError(f"warm_start: {e}; keys: levels, steps, batch_size, lr, seed") from e
    with human_console().status("Warm-starting tiny-random on " + ", ".join(levels) + " (once, cached)"):
        return str(warm_start(ws))


def train_runs(
    cfg: BenchConfig, data_dir: Path, runs_dir: Path, jobs: Sequence[tuple[str, int]], train: bool = True,
    model: str | None = None,
) -> dict[str, float]:
    """Train every (scheduler, seed) not already done, `cfg.jobs` at a time; wall seconds per finished run.

    With `train` false nothing is started: only the runs already finished are reported.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    walls: dict[str, float] = {}
    pending: list[tuple[str, dict[str, Any]]] = []
    for scheduler, seed in jobs:
        name = run_name(scheduler, seed)
        train_config = run_train_config(cfg, data_dir, runs_dir / name, scheduler, seed, model)
        done = runs_dir / f"{name}.done.json"
        # A finished run is reused only if it was trained with exactly this config.
        record = json.loads(done.read_text()) if done.exists() else {}
        if record.get("train_config") == train_config:
            walls[name] = record["wall_s"]
        else:
            pending.append((name, train_config))
    if pending and not train:
        human_console().print(f"[yellow]not finished, left out:[/] {', '.join(name for name, _ in pending)}")
        pending = []
    running: dict[str, tuple[subprocess.Popen[bytes], float, dict[str, Any]]] = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=human_console()) as progress:
        tasks = {name: progress.add_task(name, total=cfg.steps) for name, _ in pending}
        try:
            while pending or running:
                while pending and len(running) < cfg.jobs:
                    name, train_config = pending.pop(0)
                    running[name] = (_start_run(runs_dir, name, train_config), time.monotonic(), train_config)
                time.sleep(1.0)
                for name, (proc, started, train_config) in list(running.items()):
                    progress.update(tasks[name], completed=len(RunDir(runs_dir / name).read_metrics()))
                    if proc.poll() is None:
                        continue
                    del running[name]
                    if proc.returncode != 0:
                        tail = (runs_dir / f"{name}.log").read_text(errors="replace")[-2000:]
                        raise DumpError(f"training {name} failed (exit {proc.returncode}); log tail:\n{tail}")
                    walls[name] = time.monotonic() - started
                    atomic_write_json(runs_dir / f"{name}.done.json", {"wall_s": walls[name], "train_config": train_config})
        finally:
            for proc, _, _ in running.values():  # on failure or Ctrl-C, leave no orphan trainer behind
                proc.kill()
                proc.wait()
    return walls


def _start_run(runs_dir: Path, name: str, train_config: dict[str, Any]) -> subprocess.Popen[bytes]:
    shutil.rmtree(runs_dir / name, ignore_errors=True)  # a leftover of an interrupted benchmark
    config_path = runs_dir / f"{name}.train.yaml"
    atomic_write_text(config_path, yaml.safe_dump(train_config, sort_keys=False))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with open(runs_dir / f"{name}.log", "wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "dumpcli", "train", "--config", str(config_path)],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO)


# ---------------------------------------------------------------- main


def measure(
    cfg: BenchConfig, data_dir: Path, runs_dir: Path, seeds: Sequence[int], train: bool = True
) -> list[RunSummary]:
    """Train (or reuse) every arm x seed run under `runs_dir` and summarise each finished one."""
    jobs = [(s, k) for s in cfg.schedulers for k in seeds]
    walls = train_runs(cfg, data_dir, runs_dir, jobs, train, prepare_model(cfg, data_dir))
    hardest = focus_distributions(cfg, data_dir)
    return [
        summarize_run(s, k, RunDir(runs_dir / run_name(s, k)).read_evals(), hardest, cfg.target_reward,
                      walls[run_name(s, k)], cfg.measure, RunDir(runs_dir / run_name(s, k)).read_metrics())
        for s, k in jobs
        if run_name(s, k) in walls
    ]


def check_determinism(cfg: BenchConfig, data_dir: Path, out: Path, first: Sequence[RunSummary]) -> dict[str, Any]:
    """Re-train the first seed of every scheduler elsewhere; its row must equal the first (wall time aside)."""
    again = measure(cfg, data_dir, out / "recheck" / "runs", [cfg.seeds[0]])
    differences = []
    for b in again:
        a = next(s for s in first if s.scheduler == b.scheduler and s.seed == b.seed)
        for metric in METRICS[:-1]:
            if getattr(a, metric) != getattr(b, metric):
                differences.append(f"{run_name(a.scheduler, a.seed)} {metric}: {getattr(a, metric)} vs {getattr(b, metric)}")
    return {"runs": [run_name(s.scheduler, s.seed) for s in again], "identical": not differences,
            "differences": differences}


def run_benchmark(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    overrides = {
        "steps": args.steps, "jobs": args.jobs, "target_reward": args.target,
        "seeds": [int(s) for s in args.seeds.split(",")] if args.seeds else None,
        "schedulers": args.schedulers.split(",") if args.schedulers else None,
    }
    cfg = load_bench_config(Path(args.config), overrides)
    started = provenance(argv)  # the revision the runs are trained at, not the one they are read at
    out = Path(args.out)
    if args.tabulate_only:  # nothing is trained now: keep the provenance of the training, add this reading's
        started = {**_earlier_provenance(out / "results.json"), "tabulated": started}
    out.mkdir(parents=True, exist_ok=True)
    data_dir = prepare_data(cfg, out)
    summaries = measure(cfg, data_dir, out / "runs", cfg.seeds, train=not args.tabulate_only)
    seeds_of = {s: [r.seed for r in summaries if r.scheduler == s] for s in cfg.schedulers}
    seeds_of = {s: seeds for s, seeds in seeds_of.items() if seeds}  # --tabulate-only may lack some
    if "uniform" not in seeds_of:
        raise DumpError("no finished uniform run to compare with yet; run without --tabulate-only")
    hardest = focus_distributions(cfg, data_dir)
    table = aggregate(summaries, list(seeds_of), cfg.steps)
    results: dict[str, Any] = {
        "provenance": started, "config": asdict(cfg), "hardest": hardest,
        "table": _json_safe(table), "runs": _json_safe([asdict(s) for s in summaries]),
        "diagnostics": {s: diagnostics(out / "runs", s, seeds) for s, seeds in seeds_of.items()},
    }
    if args.check_determinism:
        results["determinism"] = check_determinism(cfg, data_dir, out, summaries)
    first_runs = [out / "runs" / run_name(s, seeds[0]) for s, seeds in seeds_of.items()]
    plot_error = write_plot(first_runs, out / "compare.png")
    results["plot"] = None if plot_error else str(out / "compare.png")
    if plot_error:
        human_console().print(f"[yellow]plot skipped: dump inspect failed: {plot_error}[/]")
    heatmap_error = write_heatmaps(out / "runs", seeds_of, out / "heatmaps.png")
    results["heatmaps"] = None if heatmap_error else str(out / "heatmaps.png")
    report = markdown_table(table, cfg.steps, hardest, cfg.measure) + markdown_diagnostics(results["diagnostics"])
    atomic_write_text(out / "table.md", report)
    atomic_write_json(out / "results.json", results)
    print_table(table, cfg.steps, hardest, cfg.target_reward, cfg.measure)
    return results


def _earlier_provenance(results_path: Path) -> dict[str, Any]:
    """The training provenance of an earlier results.json (without its own "tabulated"), or {}."""
    try:
        earlier = json.loads(results_path.read_text(encoding="utf-8")).get("provenance") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in earlier.items() if k != "tabulated"} if isinstance(earlier, dict) else {}


def _json_safe(obj: Any) -> Any:
    """inf (target never reached) becomes null, so the JSON is strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare curriculum schedulers on one model, mixture and step budget.",
        epilog="Example: python benchmarks/curriculum.py examples/curriculum/ladder-tiny.yaml --out bench/ladder-tiny",
    )
    parser.add_argument("config", help="benchmark config, e.g. examples/curriculum/ladder-tiny.yaml")
    parser.add_argument("--out", required=True, help="output dir (data, runs, results.json, table.md, compare.png)")
    parser.add_argument("--seeds", help="comma-separated seeds (default: the config's)")
    parser.add_argument("--schedulers", help="comma-separated schedulers; must include uniform")
    parser.add_argument("--steps", type=int, help="step budget per run (default: the config's)")
    parser.add_argument("--target", type=float, help="target mean eval reward (default: the config's)")
    parser.add_argument("--jobs", type=int, help="training processes at once (default: the config's)")
    parser.add_argument("--tabulate-only", action="store_true",
                        help="train nothing: tabulate the runs already finished (e.g. while a benchmark runs)")
    parser.add_argument("--check-determinism", action="store_true",
                        help="re-train the first seed of each scheduler and compare the rows")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through train_runs' finally, which kills the trainers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        results = run_benchmark(args, argv)
    except DumpError as e:
        if os.environ.get("DUMP_DEBUG"):
            raise
        print(f"curriculum: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print_json(results)
    determinism = results.get("determinism")
    if determinism and not determinism["identical"]:
        human_console().print("[red]not deterministic:[/] " + "; ".join(determinism["differences"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
