"""`dump eval`: greedy accuracy and mean reward per distribution on a dataset's test split.

    dump eval --run runs/ucb                               # the run's model, newest checkpoint, data
    dump eval --data data/kk --adapter runs/ucb/checkpoints/step-000100 --json
    dump eval --data data/cpu-demo --model smollm2-135m    # the base model, as a baseline
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from dumpcli.config import MAX_SEED, DataConfig, GRPOConfig, TrainConfig
from dumpcli.errors import DumpError
from dumpcli.output import human_console, print_json


def _adapter_and_config(adapter: Path | None, run: Path | None, console: Any) -> tuple[Path | None, TrainConfig | None]:
    """Weights to load and the config of the run they came from (when known).

    --run takes the newest checkpoint that verifies, saying which damaged ones it passed over;
    an --adapter checkpoint that fails verification is refused.
    """
    from dumpcli.rundir import RunDir, verify_checkpoint
    from dumpcli.rundir.layout import ADAPTER, MANIFEST, describe_fallback

    if adapter is not None and run is not None:
        raise DumpError("pass either --adapter or --run, not both")
    if run is not None:
        rd = RunDir(run)
        cfg = rd.read_config()
        latest, damaged = rd.newest_intact_checkpoint()
        if latest is None:
            why = f" ({describe_fallback(latest, damaged)})" if damaged else " yet"
            raise DumpError(f"run {run} has no intact checkpoint{why}; wait for one, resume the run, or pass --adapter")
        if damaged:
            console.print(f"Note: {describe_fallback(latest, damaged)}", soft_wrap=True, highlight=False)
        return latest / ADAPTER, cfg
    if adapter is None:
        return None, None
    if not adapter.exists():
        raise DumpError(f"adapter {adapter} does not exist; pass a run's checkpoints/step-N folder or --run RUN")
    checkpoint = adapter if (adapter / MANIFEST).is_file() else adapter.parent if (adapter.parent / MANIFEST).is_file() else None
    if checkpoint is not None and (problem := verify_checkpoint(checkpoint)) is not None:
        raise DumpError(f"checkpoint {checkpoint} is damaged ({problem}); pass another one, or --run RUN for the newest intact one")
    folder = adapter / ADAPTER if (adapter / ADAPTER).is_dir() else adapter
    owner = RunDir.of_checkpoint(folder)  # its config names the model the adapter belongs to
    return folder, owner.read_config() if owner is not None else None


def eval_command(
    data: str = typer.Option(None, "--data", "-d", help="Dataset dir (default: the run's, else the cpu-demo recipe)."),
    model: str = typer.Option(None, "--model", "-m", help="Base model (default: the run's, else smollm2-135m)."),
    adapter: Path = typer.Option(None, "--adapter", help="A checkpoint folder (run/checkpoints/step-N) or its adapter/."),
    run: Path = typer.Option(None, "--run", help="A run dir: its model, data and newest checkpoint."),
    max_rows: int = typer.Option(None, "--max-rows", help="At most this many test rows per distribution (default: all)."),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="Longest completion (default: the run's, else 16)."),
    distributions: str = typer.Option(None, "--distributions", help="Comma-separated subset of distributions."),
    batch_size: int = typer.Option(64, "--batch-size", help="Prompts per greedy generation call."),
    samples: int = typer.Option(None, "--samples", help="Also sample this many completions per row for the sampled accuracy (default: the run's run.eval_samples, else 4; 0 = greedy only)."),
    temperature: float = typer.Option(None, "--temperature", help="Sampling temperature for --samples (default: the run's grpo.temperature, else 1)."),
    seed: int = typer.Option(0, "--seed", min=0, max=MAX_SEED, help="Seed for the model load (random weights of tiny-random, LoRA init)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Evaluate a model (optionally with a trained adapter) on each distribution's test split.

    Accuracy counts rows the distribution's reward calls correct, greedy; the sampled accuracy is
    the share of --samples completions per row that are correct at the training temperature.

    Example: dump eval --run runs/ucb --json
    """
    from dumpcli.config import set_value
    from dumpcli.train.evaluate import EvalSet, Sampling, evaluate
    from dumpcli.rewards import get_reward
    from dumpcli.train.setup import resolve_dataset, select_distributions

    console = human_console()
    weights, run_cfg = _adapter_and_config(adapter, run, console)
    cfg = run_cfg or TrainConfig()
    if data is not None:
        cfg = dataclasses.replace(cfg, data=DataConfig(path=data))
    if distributions is not None:
        cfg = set_value(cfg, "data.distributions", distributions, where="--distributions")
    if model is not None:
        cfg = set_value(cfg, "model.name", model, where="--model")
    if max_rows is not None and max_rows < 1 or batch_size < 1:
        raise DumpError("--max-rows and --batch-size must be at least 1")
    tokens = max_new_tokens if max_new_tokens is not None else (run_cfg.grpo.max_new_tokens if run_cfg else GRPOConfig.max_new_tokens)
    if tokens < 1:
        raise DumpError(f"--max-new-tokens must be at least 1, got {tokens}")
    sampling = Sampling(cfg.run.eval_samples if samples is None else samples,
                        cfg.grpo.temperature if temperature is None else temperature, cfg.grpo.top_p)
    if sampling.samples < 0 or not sampling.temperature > 0:
        raise DumpError("--samples must be >= 0 and --temperature > 0")
    dataset = resolve_dataset(cfg.data)
    infos = select_distributions(cfg.data, dataset)
    test = dataset.rows("test")
    sets = [EvalSet(d.name, [r for r in test if r["distribution"] == d.name][:max_rows], get_reward(d.reward)) for d in infos]
    loaded = _load(cfg, weights, seed)
    total = sum(len(s.rows) for s in sets)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("eval", total=total)
        result = evaluate(loaded, sets, tokens, batch_size, on_batch=lambda done, _: bar.update(task, completed=done),
                          sampling=sampling)
    result = {"model": cfg.model.name, "adapter": str(weights) if weights else None, "data": str(dataset.path),
              "max_new_tokens": tokens, **result}
    _print_table(console, result)
    if as_json:
        print_json(result)


def _load(cfg: TrainConfig, weights: Path | None, seed: int) -> Any:
    import torch

    from dumpcli.policy import load_adapter_weights, load_policy
    from dumpcli.train.setup import hf_progress_bars_off

    torch.manual_seed(seed)
    model_cfg = cfg.model if weights is not None else dataclasses.replace(cfg.model, lora=False)  # no adapter: the base model
    with hf_progress_bars_off():
        loaded = load_policy(model_cfg, seed)
    if weights is not None:
        load_adapter_weights(loaded.model, weights)
    loaded.model.eval()
    return loaded


def _print_table(console: Any, result: dict[str, Any]) -> None:
    from rich.table import Table

    title = f"{result['model']}" + (f" + {result['adapter']}" if result["adapter"] else "") + f" on {result['data']}"
    table = Table(title=title, title_justify="left")
    sampled = "sampled_accuracy" in result
    columns = ["distribution", "n", "accuracy (greedy)", *([f"accuracy ({result['samples']} sampled)"] if sampled else []), "mean reward"]
    for col in columns:
        table.add_column(col, justify="left" if col == "distribution" else "right")
    for name, d in [*result["distributions"].items(), ("[bold]all", result)]:
        table.add_row(name, str(d["n"]), _fmt(d["accuracy"]), *([_fmt(d["sampled_accuracy"])] if sampled else []), _fmt(d["reward"]))
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
