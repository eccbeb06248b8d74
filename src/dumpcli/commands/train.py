"""`dump train`: GRPO with a curriculum scheduler over a mixture of distributions.

    dump train --scheduler ucb                                  # the CPU demo (SmolLM2 + LoRA, 40 steps)
    dump train --config examples/configs/ladder-tiny.yaml --scheduler uniform --out runs/uni
    dump train --resume runs/uni                                # continue from the newest checkpoint
    dump train --engine trl ...                                 # TRL's GRPOTrainer (docs/engines.md)
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from dumpcli.config import (TRAIN_FLAGS, TrainConfig, apply_overrides, config_differences, field_info,
                            load_config_file, parse_option_pairs, parse_sets, resolve_paths, resolve_scheduler)
from dumpcli.errors import DumpError
from dumpcli.output import human_console, print_json

if TYPE_CHECKING:
    from rich.console import Console

    from dumpcli.train.loop import Trainer

# Keys that may differ on --resume: they change only what is shown, never what is computed.
RESUME_MAY_DIFFER = {"run.out", "run.progress"}


def resolve_config(config: Path | None, flags: dict[str, Any], scheduler_options: list[str], sets: list[str],
                   resume: Path | None = None) -> TrainConfig:
    """Defaults (or the resumed run's config) <- --config <- common flags <- --scheduler-option <- --set.

    `flags`: TRAIN_FLAGS name -> value (None or False = not given). The result has its scheduler
    options typed and complete, so a resumed run compares values, not spellings.
    """
    from dumpcli.rundir import RunDir
    from dumpcli.rundir.lock import refuse_if_held

    if resume is not None:
        refuse_if_held(resume)  # before reading it: a run being created has no config.yaml yet
    saved = RunDir(resume).read_config() if resume is not None else None
    base = saved if saved is not None else TrainConfig()
    cfg = load_config_file(config, base=base) if config is not None else base
    given = {flag: flags[flag.name] for flag in TRAIN_FLAGS if flags.get(flag.name) is not None and flags[flag.name] is not False}
    overrides = [(flag.key, value, "--" + flag.name.replace("_", "-")) for flag, value in given.items()]
    new_scheduler = next((v for f, v in given.items() if f.key == "scheduler.name"), None)
    if new_scheduler is not None and new_scheduler != cfg.scheduler.name:
        # Options belong to the scheduler that is being replaced.
        cfg = dataclasses.replace(cfg, scheduler=dataclasses.replace(cfg.scheduler, options={}))
    overrides += [(f"scheduler.options.{key}", value, "--scheduler-option")
                  for key, value in parse_option_pairs(scheduler_options).items()]
    cfg = resolve_paths(resolve_scheduler(apply_overrides(cfg, overrides + parse_sets(sets))))
    if saved is not None and resume is not None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, out=str(resume)))
        differ = [k for k in config_differences(resolve_paths(resolve_scheduler(saved)), cfg) if k not in RESUME_MAY_DIFFER]
        if differ:
            raise DumpError(f"run {resume} was trained with a different config ({', '.join(differ)} differ); "
                            "drop those flags to resume it, or start a new run with another --out")
    return cfg


def _with_train_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Add one typer option per TRAIN_FLAGS entry to `command` (received in **flags)."""
    params = [p for p in inspect.signature(command).parameters.values() if p.kind is not p.VAR_KEYWORD]
    for flag in TRAIN_FLAGS:
        hint, help_text = field_info(flag.key)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `str | None`: none = not given
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        names = ["--" + flag.name.replace("_", "-"), *([flag.short] if flag.short else [])]
        default = typer.Option(False if hint is bool else None, *names, help=help_text)
        params.append(inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=hint))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return command


@_with_train_flags
def train(
    config: Path = typer.Option(None, "--config", "-c", help="YAML config (e.g. examples/configs/*.yaml or a run's config.yaml)."),
    scheduler_option: list[str] = typer.Option(None, "--scheduler-option", "-O", help="Scheduler option key=value (repeatable)."),
    sets: list[str] = typer.Option(None, "--set", help="Any config key: section.key=value (repeatable), e.g. grpo.beta=0.001."),
    resume: Path = typer.Option(None, "--resume", help="Continue this run dir from its newest complete checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the final summary as JSON on stdout."),
    **flags: Any,
) -> None:
    """Train with GRPO; the scheduler picks each prompt's distribution.

    With only --scheduler it trains the embedded CPU demo: SmolLM2-135M-Instruct + LoRA on the arithmetic ladder.

    Every config key is settable with --set; the resolved config goes to the run dir.

    Ctrl-C, SIGTERM and SIGHUP save a checkpoint (exit 130/143/129); --resume continues exactly where the run stopped.

    --engine trl trains with TRL's GRPOTrainer (several processes through torchrun / accelerate launch).

    Example: dump train --scheduler ucb
    """
    from dumpcli.train.signals import StopRequested, stop_signals

    if resume is not None and flags.get("out") is not None:
        raise DumpError("--resume continues the run dir it names; drop --out")
    cfg = resolve_config(config, flags, scheduler_option or [], sets or [], resume)
    console = human_console()
    try:
        with stop_signals():  # SIGINT, SIGTERM, SIGHUP: one line and 128 + signal, from here on
            _train(cfg, resume, console, as_json)
    except StopRequested as e:  # before training began (loading): nothing to checkpoint
        console.print(f"Stopped by {e.signal_name} before training began; nothing was trained.", soft_wrap=True, highlight=False)
        raise typer.Exit(e.exit_code) from None


def _train(cfg: TrainConfig, resume: Path | None, console: Console, as_json: bool) -> None:
    from dumpcli.engines import build_engine
    from dumpcli.train.loop import TrainingInterrupted

    trainer = build_engine(cfg, resume=resume is not None)
    if not trainer.is_main_process:  # torchrun / accelerate launch: rank 0 reports
        try:
            trainer.fit()
        finally:
            trainer.close()
        return
    try:
        verb = f"Resuming at step {trainer.step}" if resume is not None else "Training"
        for note in trainer.notes:
            console.print(f"Note: {note}", soft_wrap=True, highlight=False)
        console.print(f"{verb}: {trainer.cfg.model.name} on {trainer.data.path} "
                      f"({len(trainer.names)} distributions), scheduler {trainer.cfg.scheduler.name}; run dir [bold]{trainer.run.path}[/]",
                      soft_wrap=True)
        try:
            with _display(trainer, console):
                trainer.fit()
        except TrainingInterrupted as e:
            where = f"checkpoint {e.checkpoint}" if e.checkpoint else "no checkpoint (no step finished)"
            console.print(f"Interrupted ({e.signal_name}) after step {e.step}; {where}. "
                          f"Continue with: dump train --resume {trainer.run.path}", soft_wrap=True, highlight=False)
            raise typer.Exit(e.exit_code) from None
    finally:
        trainer.close()
    from dumpcli.inspect.summary import start_end_summary

    summary = start_end_summary(trainer.run)
    _print_summary(console, summary)
    if as_json:
        print_json(summary)


# ---------------------------------------------------------------- live display


class _Display:
    """Progress bar plus a compact table: scheduler probability and reward per distribution."""

    def __init__(self, trainer: Trainer, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.trainer, self.console = trainer, console
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self.task = self.progress.add_task("train", total=trainer.cfg.grpo.steps, completed=trainer.step, info="")
        self.last: dict[str, Any] = {}
        self.drawn = {n: 0 for n in trainer.names}
        self.reward: dict[str, float | None] = {n: None for n in trainer.names}
        self.eval: dict[str, float | None] = {n: None for n in trainer.names}

    def on_step(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.last = row
        for name, d in row["distributions"].items():
            if d["prompts"]:
                self.drawn[name] += d["prompts"]
                old = self.reward[name]
                self.reward[name] = d["reward"] if old is None else 0.7 * old + 0.3 * d["reward"]  # smoothed
        info = f"reward {row['reward']:.3f}  {row['step_time_s']:.1f}s/step"
        self.progress.update(self.task, completed=row["step"], info=info)

    def on_eval(self, trainer: Trainer, row: dict[str, Any]) -> None:
        for name, d in row["distributions"].items():
            self.eval[name] = d["reward"]

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.table import Table

        table = Table(box=None, padding=(0, 1), header_style="dim")
        for col in ("distribution", "p(next)", "drawn", "reward~", "eval"):
            table.add_column(col, justify="left" if col == "distribution" else "right")
        probs = self.trainer.scheduler.probabilities()
        for j, name in enumerate(self.trainer.names):
            table.add_row(name, f"{probs[j]:.2f}", str(self.drawn[name]), _fmt(self.reward[name]), _fmt(self.eval[name]))
        return Group(self.progress, table)


class _display:  # noqa: N801 - used as a context manager
    def __init__(self, trainer: Trainer, console: Console) -> None:
        self.trainer, self.console, self.live = trainer, console, None
        self.view = _Display(trainer, console)

    def __enter__(self) -> _display:
        from rich.live import Live

        cfg = self.trainer.cfg.run
        self.trainer.on_eval.append(self.view.on_eval)
        if cfg.progress and self.console.is_terminal:
            self.trainer.on_step.append(self.view.on_step)
            self.live = Live(self.view, console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        elif cfg.progress:  # a log file: one line per step instead of a redrawn screen
            self.trainer.on_step.append(self._line)
        return self

    def _line(self, trainer: Trainer, row: dict[str, Any]) -> None:
        p = " ".join(f"{n}={d['probability']:.2f}" for n, d in row["distributions"].items())
        self.console.print(f"step {row['step']}/{trainer.cfg.grpo.steps} reward {row['reward']:.3f} "
                           f"({row['step_time_s']:.1f}s) p: {p}", highlight=False, soft_wrap=True)

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Run {summary['run']}: {summary['steps']} steps in {summary['elapsed_s']:.0f} s", title_justify="left")
    sampled = summary.get("eval_sampled_accuracy_first") is not None
    columns = ["distribution", "greedy acc", *(["sampled acc"] if sampled else []), "eval reward",
               "prompts", "train reward", "p(last)"]
    for col in columns:  # names whole; on a narrow console the numbers wrap instead
        table.add_column(col, justify="left" if col == "distribution" else "right", no_wrap=col == "distribution")
    for name, d in summary["distributions"].items():
        table.add_row(name, change(d, "eval_accuracy"), *([change(d, "eval_sampled_accuracy")] if sampled else []),
                      change(d, "eval_reward"), str(d["prompts"]), change(d, "train_reward"), _fmt(d["probability_last"]))
    table.add_row("[bold]all", change(summary, "eval_accuracy"), *([change(summary, "eval_sampled_accuracy")] if sampled else []),
                  change(summary, "eval_reward"), "", change(summary, "reward"), "")
    console.print(table)
    console.print("acc: exact answers on the test rows, greedy and sampled at the training temperature, "
                  "before → after training; train reward: first → last quarter of the steps that drew it", style="dim")
    console.print(headline(summary))
    console.print(f"Evaluate: dump eval --run {summary['run']}   Inspect: dump inspect {summary['run']}")


def change(d: dict[str, Any], key: str) -> str:
    """'first → last' of a start_end_summary measure (`key`_first, `key`_last)."""
    return f"{_fmt(d.get(key + '_first'))} → {_fmt(d.get(key + '_last'))}"


def headline(summary: dict[str, Any]) -> str:
    """One sentence that is true to accuracy (never to reward alone)."""
    n = len(summary["distributions"])
    if summary["rose_by"] != "eval":
        return (f"No second evaluation, so no accuracy change to report; training reward rose on "
                f"{len(summary['rose_on'])} of {n} distributions (first → last quarter of their steps)")
    parts = [f"Mean greedy accuracy {change(summary, 'eval_accuracy')}"]
    if summary.get("eval_sampled_accuracy_first") is not None:
        parts.append(f"sampled {change(summary, 'eval_sampled_accuracy')}")
    rose, fell = summary["rose_on"], summary["fell_on"]
    parts.append(f"greedy accuracy rose on {len(rose)} and fell on {len(fell)} of {n} distributions"
                 + (f" (fell: {', '.join(fell)})" if fell else ""))
    return "; ".join(parts)
