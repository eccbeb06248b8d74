"""Everything a training run needs, checked in order before the run dir is touched.

config values -> dataset dir (prepared from a recipe into the cache when no path is given) ->
distribution subset -> reward functions -> scheduler (and its options) -> model. Any problem is
a DumpError raised before `dump train` creates or changes a run dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.config import TrainConfig, validate_config
from dumpcli.errors import DumpError
from dumpcli.rewards import RewardFn, get_reward
from dumpcli.scheduler import Distribution, Scheduler, build_scheduler


@dataclass
class TrainingInputs:
    cfg: TrainConfig
    data_path: Path
    names: list[str]  # the distributions trained on, in dataset order
    train_rows: list[list[dict[str, Any]]]  # per distribution
    test_rows: list[list[dict[str, Any]]]  # per distribution, at most data.eval_rows each
    rewards: list[RewardFn]  # per distribution
    scheduler: Scheduler
    loaded: Any  # dumpcli.models.LoadedModel


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


def cache_root() -> Path:
    return Path(os.environ.get("DUMP_CACHE") or Path.home() / ".cache" / "dump").expanduser()


def recipe_cache_dir(recipe: str) -> Path:
    """$DUMP_CACHE/data/<recipe>; a recipe file is keyed by its content, so edits re-prepare."""
    path = Path(recipe)
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return cache_root() / "data" / f"{path.stem}-{digest}"
    return cache_root() / "data" / recipe


def resolve_dataset(cfg: TrainConfig) -> Any:
    """The dataset dir to train on: `data.path`, or `data.recipe` prepared into the cache once."""
    from dumpcli.data.dataset import load_dataset_dir

    if cfg.data.path is not None:
        path = Path(cfg.data.path)
        if not path.exists():
            raise DumpError(f"dataset dir {path} does not exist; create it with `dump prepare ... --out {path}`")
        return load_dataset_dir(path)
    cached = recipe_cache_dir(cfg.data.recipe)
    if (cached / "dataset.yaml").exists():
        try:
            return load_dataset_dir(cached)
        except DumpError:
            pass  # written by another dump version: prepare it again below
    from rich.console import Console

    from dumpcli.data.recipe import prepare_recipe

    with Console(stderr=True).status(f"Preparing recipe {cfg.data.recipe} into {cached} (once)"):
        return prepare_recipe(cfg.data.recipe, cached, overwrite=cached.exists())


def select_distributions(cfg: TrainConfig, dataset: Any) -> list[Any]:
    infos = list(dataset.distributions)
    wanted = cfg.data.distributions
    if wanted is None:
        return infos
    known = {d.name for d in infos}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise DumpError(f"data.distributions names {unknown[0]!r}, which {dataset.path} lacks; it has: {', '.join(sorted(known))}")
    if not wanted:
        raise DumpError("data.distributions is empty; leave it unset to train on every distribution")
    return [d for d in infos if d.name in wanted]


def seed_everything(cfg: TrainConfig) -> None:
    """Seed python/numpy/torch and apply the thread and determinism settings."""
    import torch

    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    if cfg.run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    random.seed(cfg.run.seed)
    np.random.seed(cfg.run.seed % 2**32)
    torch.manual_seed(cfg.run.seed)


def load_inputs(cfg: TrainConfig) -> TrainingInputs:
    """Validate and load everything, in the order that fails fastest; writes nothing but caches."""
    validate_config(cfg)
    dataset = resolve_dataset(cfg)
    infos = select_distributions(cfg, dataset)
    names = [d.name for d in infos]
    train_all, test_all = dataset.rows("train"), dataset.rows("test")
    train_rows = [[r for r in train_all if r["distribution"] == n] for n in names]
    empty = [n for n, rows in zip(names, train_rows) if not rows]
    if empty:
        raise DumpError(f"distribution {empty[0]!r} has no train rows in {dataset.path}; drop it with data.distributions")
    test_rows = [[r for r in test_all if r["distribution"] == n][: cfg.data.eval_rows] for n in names]
    rewards = [get_reward(d.reward) for d in infos]
    scheduler = build_scheduler(
        cfg.scheduler.name,
        [Distribution(d.name, len(rows), float(d.difficulty)) for d, rows in zip(infos, train_rows)],
        cfg.run.seed,
        cfg.scheduler.options,
    )
    seed_everything(cfg)
    from dumpcli.models import load_policy

    with hf_progress_bars_off():
        loaded = load_policy(cfg.model, cfg.run.seed)
    return TrainingInputs(cfg, Path(dataset.path), names, train_rows, test_rows, rewards, scheduler, loaded)
