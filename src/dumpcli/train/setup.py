"""Everything a training run needs, checked in order before the run dir is touched, then the trainer.

config values -> run dir free (or resumable) -> dataset dir (prepared from a recipe into the cache
when no path is given) -> distribution subset -> rewards -> scheduler -> model -> run dir.
Any problem is a DumpError raised before `dump train` creates or changes a run dir.

    trainer = build_trainer(cfg)              # a new run
    trainer = build_trainer(cfg, resume=True) # cfg.run.out's newest checkpoint
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.config import DataConfig, RunConfig, TrainConfig, resolve_paths, resolve_scheduler, validate_config
from dumpcli.errors import DumpError
from dumpcli.fsutil import cache_root
from dumpcli.rewards import RewardFn, get_reward
from dumpcli.rundir import RunDir, RunWriter, check_new_run_dir
from dumpcli.rundir.layout import describe_fallback
from dumpcli.rundir.lock import RunLock, refuse_if_held
from dumpcli.train.evaluate import EvalSet
from dumpcli.scheduler import Distribution, Scheduler, build_scheduler


@dataclass
class TrainingData:
    """The distributions trained on, in dataset order, with their rows and rewards."""

    record: dict[str, Any]  # what the run dir keeps: resolved path, fingerprint, distributions
    names: list[str]
    train_rows: list[list[dict[str, Any]]]  # per distribution
    test_rows: list[list[dict[str, Any]]]  # per distribution, at most data.eval_rows each
    rewards: list[RewardFn]  # per distribution
    distributions: list[Distribution]  # what the scheduler knows of each

    def eval_sets(self) -> list[EvalSet]:
        """The test rows of each distribution that has any, with its reward: what every evaluation runs."""
        return [EvalSet(name, rows, self.rewards[j]) for j, (name, rows) in enumerate(zip(self.names, self.test_rows)) if rows]

    @property
    def path(self) -> Path:
        return Path(self.record["path"])


@contextlib.contextmanager
def hf_progress_bars_off() -> Iterator[None]:
    """transformers draws tqdm bars when loading and saving weights; ours is the only progress display."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def recipe_cache_dir(recipe: str) -> Path:
    """$DUMP_CACHE/data/<name>-<hash of the recipe text>: editing a recipe (built-in or file) re-prepares it."""
    from dumpcli.data.recipe import recipe_source

    name, text = recipe_source(recipe)
    return cache_root() / "data" / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def resolve_dataset(data: DataConfig) -> Any:
    """The dataset dir to train on: `data.path`, or `data.recipe` prepared into the cache once."""
    from dumpcli.data.dataset import load_dataset_dir

    if data.path is not None:
        path = Path(data.path)
        if not path.exists():
            raise DumpError(f"dataset dir {path} does not exist; create it with `dump prepare ... --out {path}`")
        return load_dataset_dir(path)
    cached = recipe_cache_dir(data.recipe)
    if (cached / "dataset.yaml").exists():
        with contextlib.suppress(DumpError):  # written by another dump version: prepare it again below
            return load_dataset_dir(cached)
    from rich.console import Console

    from dumpcli.data.recipe import prepare_recipe

    with Console(stderr=True).status(f"Preparing recipe {data.recipe} into {cached} (once)"):
        return prepare_recipe(data.recipe, cached, overwrite=cached.exists())


def select_distributions(data: DataConfig, dataset: Any) -> list[Any]:
    infos = list(dataset.distributions)
    wanted = data.distributions
    if wanted is None:
        return infos
    known = {d.name for d in infos}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise DumpError(f"data.distributions names {unknown[0]!r}, which {dataset.path} lacks; it has: {', '.join(sorted(known))}")
    if not wanted:
        raise DumpError("data.distributions is empty; leave it unset to train on every distribution")
    return [d for d in infos if d.name in wanted]


def load_training_data(data: DataConfig) -> TrainingData:
    dataset = resolve_dataset(data)
    infos = select_distributions(data, dataset)
    names = [d.name for d in infos]
    train_all, test_all = dataset.rows("train"), dataset.rows("test")
    train_rows = [[r for r in train_all if r["distribution"] == n] for n in names]
    empty = [n for n, rows in zip(names, train_rows) if not rows]
    if empty:
        raise DumpError(f"distribution {empty[0]!r} has no train rows in {dataset.path}; drop it with data.distributions")
    test_rows = [[r for r in test_all if r["distribution"] == n][: data.eval_rows] for n in names]
    rewards = [get_reward(d.reward) for d in infos]
    distributions = [Distribution(d.name, len(rows), float(d.difficulty)) for d, rows in zip(infos, train_rows)]
    return TrainingData(dataset.record(names), names, train_rows, test_rows, rewards, distributions)


def seed_everything(run: RunConfig) -> None:
    """Seed python/numpy/torch and apply the thread and determinism settings."""
    import torch

    if run.threads:
        torch.set_num_threads(run.threads)
    if run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(run.seed)
    np.random.seed(run.seed % 2**32)
    torch.manual_seed(run.seed)


def default_run_dir(scheduler: str) -> str:
    return str(Path("runs") / f"{scheduler}-{time.strftime('%Y%m%d-%H%M%S')}")


def open_run(cfg: TrainConfig, *, resume: bool, main: bool = True) -> tuple[TrainConfig, RunDir, RunLock | None]:
    """The validated config (scheduler options typed, paths resolved, run dir named), its run dir and,
    on resume, the run dir's lock, taken before anything slow so that a second trainer stops here.

    Only the `main` process (of several, --engine trl) checks a new run dir or takes the lock.
    """
    validate_config(cfg)
    cfg = resolve_paths(resolve_scheduler(cfg))  # config.yaml records every option typed, paths resolved
    if cfg.run.out is None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, out=default_run_dir(cfg.scheduler.name)))
    run = RunDir(Path(str(cfg.run.out)))
    if resume:
        if main:
            refuse_if_held(run.path)  # a new run may not have written its config.yaml yet: name its pid
        run.read_raw_config()  # a run dir at all
        return cfg, run, run.lock() if main else None
    if main:
        check_new_run_dir(run)  # before the model loads: a bad --out fails in a second
    return cfg, run, None


def set_aside_damaged(run: RunDir, writer: RunWriter | None) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint of `run` and the notes on damaged newer ones, set aside by `writer`."""
    checkpoint, damaged = run.newest_intact_checkpoint()
    if not damaged:
        return checkpoint, []
    if writer is not None:
        for path, _ in damaged:
            writer.set_aside(path)
    return checkpoint, [describe_fallback(checkpoint, damaged) + "; set aside as step-N.damaged"]


def build_trainer(cfg: TrainConfig, *, resume: bool = False) -> Any:
    """Validate and load everything, then create the run dir, or reopen it at its newest intact checkpoint.

    `cfg` comes resolved from `dumpcli.config` (scheduler options typed); `cfg.run.out` none means
    runs/<scheduler>-<timestamp>. Nothing is written to the run dir unless every check passed
    and the model loaded; the trainer holds the run dir's lock until `Trainer.close()`. A resumed
    run without an intact checkpoint starts again from step 0 with its saved config.
    """
    from dumpcli.policy import load_policy
    from dumpcli.train.loop import Trainer

    cfg, run, lock = open_run(cfg, resume=resume)
    try:
        data = load_training_data(cfg.data)
        if resume:
            check_same_dataset(run, data.record)
        scheduler: Scheduler = build_scheduler(cfg.scheduler.name, data.distributions, cfg.run.seed, cfg.scheduler.options)
        seed_everything(cfg.run)
        with hf_progress_bars_off():
            loaded = load_policy(cfg.model, cfg.run.seed)
        if lock is None:
            return Trainer(cfg, data, scheduler, loaded, RunWriter.create(run.path, cfg, data.record))
        trainer = Trainer(cfg, data, scheduler, loaded, RunWriter(run, lock))
        checkpoint, notes = set_aside_damaged(run, trainer.writer)
        trainer.notes += notes
        if checkpoint is not None:
            trainer.load_checkpoint(checkpoint)
        trainer.writer = RunWriter.reopen(run, trainer.step if checkpoint is not None else None, lock)
        return trainer
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def check_same_dataset(run: RunDir, record: dict[str, Any]) -> None:
    """A resumed run trains on the very dataset it started on (same fingerprint), wherever it is."""
    saved = run.read_dataset() or {}
    if saved.get("fingerprint") and saved["fingerprint"] != record["fingerprint"]:
        raise DumpError(f"the dataset at {record['path']} is not the one run {run.path} trained on "
                        f"({saved.get('path')}): their fingerprints differ; restore that dataset dir or start a new run")
