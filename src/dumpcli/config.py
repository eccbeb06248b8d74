"""The training config: one dataclass per concern (model, data, grpo, scheduler, run).

Flags -> TrainConfig -> resolved `config.yaml` in the run dir -> logs. Sources, later ones winning:
the defaults below, `--config file.yaml`, the common flags, then `--set section.key=value`.
Unknown sections or keys are errors that list the allowed ones, so a typo never trains silently
with a default.

    dump train --config examples/configs/ladder-tiny.yaml --set grpo.lr=3e-4 --set run.eval_every=20
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dumpcli import __version__
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_write_text
from dumpcli.values import coerce, type_name
from dumpcli.models import ModelConfig

CONFIG_FORMAT_VERSION = 1
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo")  # the table lives in dumpcli.grpo; names as TRL's loss_type
LR_SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class DataConfig:
    path: str | None = field(default=None, metadata={"help": "Dataset dir from `dump prepare`; none = prepare `recipe` into the cache on first use."})
    recipe: str = field(default="cpu-demo", metadata={"help": "Built-in recipe (or recipe file) used when `path` is none; cpu-demo is SmolLM2's arithmetic ladder."})
    distributions: list[str] | None = field(default=None, metadata={"help": "Train and evaluate on these distributions only (none = all of the dataset's)."})
    eval_rows: int = field(default=48, metadata={"help": "At most this many test rows per distribution in each evaluation, so evaluation stays fast."})


@dataclass
class GRPOConfig:
    steps: int = field(default=40, metadata={"help": "Optimizer steps (one batch of prompts each)."})
    batch_size: int = field(default=4, metadata={"help": "Prompts per step; the scheduler picks the distribution of each slot."})
    num_generations: int = field(default=8, metadata={"help": "Completions per prompt (the GRPO group, G >= 2)."})
    max_new_tokens: int = field(default=12, metadata={"help": "Longest completion; longer ones are cut (completions/clipped_ratio)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rollouts (evaluation is greedy)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the rollouts; 1 = off."})
    lr: float = field(default=2e-4, metadata={"help": "AdamW learning rate; 2e-4 suits LoRA, full fine-tunes want ~1e-5 or less."})
    lr_schedule: str = field(default="constant", metadata={"help": "constant | linear | cosine decay after warmup."})
    warmup_steps: int = field(default=0, metadata={"help": "Steps of linear learning-rate warmup from 0."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay (the paper used 0.01)."})
    adam_beta1: float = field(default=0.9, metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(default=0.999, metadata={"help": "AdamW beta2."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping by global norm; 0 = off."})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range: ratio kept within [1 - epsilon, 1 + epsilon_high]."})
    epsilon_high: float | None = field(default=None, metadata={"help": "Upper clip (DAPO's clip-higher); none = epsilon."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient to the reference (k3 estimator, adapter disabled); 0 skips the reference pass (faster on CPU); the paper used 0.001."})
    loss_type: str = field(default="grpo", metadata={"help": "Token-loss normalisation as TRL names it: grpo (per sequence), bnpo (per token), dr_grpo (batch x max_new_tokens)."})
    scale_rewards: bool = field(default=True, metadata={"help": "Divide group advantages by the group's std (false = Dr. GRPO's unscaled r - mean)."})
    advantage_eps: float = field(default=1e-4, metadata={"help": "Added to the group std before dividing."})
    num_iterations: int = field(default=1, metadata={"help": "PPO updates per batch; 1 = on-policy (old log-probs = current ones, ratio 1)."})
    micro_batch_size: int | None = field(default=None, metadata={"help": "Completions per forward/backward (gradient accumulation); must divide batch_size x num_generations; none = all at once."})


@dataclass
class SchedulerConfig:
    name: str = field(default="ucb", metadata={"help": "Scheduler plugin (see `dump schedulers`)."})
    options: dict[str, Any] = field(default_factory=dict, metadata={"help": "The scheduler's own options (--scheduler-option key=value)."})


@dataclass
class RunConfig:
    out: str | None = field(default=None, metadata={"help": "Run dir; none = runs/<scheduler>-<timestamp>."})
    seed: int = field(default=0, metadata={"help": "Seeds the model init, sampling, the prompt choice and the scheduler."})
    eval_every: int = field(default=0, metadata={"help": "Evaluate on the test split every this many steps; 0 = only after the last step."})
    eval_at_start: bool = field(default=True, metadata={"help": "Also evaluate before the first step, as the baseline."})
    eval_batch_size: int = field(default=64, metadata={"help": "Prompts per greedy generation call during evaluation."})
    save_every: int = field(default=0, metadata={"help": "Checkpoint every this many steps; 0 = only at the end (and on Ctrl-C)."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Keep the newest this many checkpoints; 0 = keep all."})
    samples_per_step: int = field(default=2, metadata={"help": "Completions written to samples.jsonl per step (bounded log)."})
    deterministic: bool = field(default=False, metadata={"help": "torch.use_deterministic_algorithms, for bit-exact resume tests."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = torch's default."})
    progress: bool = field(default=True, metadata={"help": "Live progress bar and table on stderr."})


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def completions_per_step(self) -> int:
        return self.grpo.batch_size * self.grpo.num_generations


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "grpo": GRPOConfig,
    "scheduler": SchedulerConfig,
    "run": RunConfig,
}
_HEADER_KEYS = ("format_version", "dump_version")  # written by write_resolved_config


# ---------------------------------------------------------------- dict <-> config


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Every section with every default filled in (what config.yaml holds, minus the header)."""
    return {name: dataclasses.asdict(getattr(cfg, name)) for name in SECTIONS}


Override = tuple[str, Any, str]  # (section.key, value, where it came from: a file, --set, --lr, ...)


def config_from_dict(raw: Mapping[str, Any], *, base: TrainConfig | None = None, where: str = "config") -> TrainConfig:
    """Build a TrainConfig from nested dicts (a YAML file), starting from `base` or the defaults."""
    if not isinstance(raw, Mapping):
        raise DumpError(f"{where} must be a mapping of sections ({', '.join(SECTIONS)}), got {type(raw).__name__}")
    version = raw.get("format_version", CONFIG_FORMAT_VERSION)
    if version != CONFIG_FORMAT_VERSION:
        raise DumpError(f"{where} has format_version {version!r}; this dump reads version {CONFIG_FORMAT_VERSION}")
    overrides: list[Override] = []
    for section, values in raw.items():
        if section in _HEADER_KEYS:
            continue
        if section not in SECTIONS:
            raise DumpError(f"{where}: unknown section {section!r}; allowed: {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, Mapping):
            raise DumpError(f"{where}: section {section!r} must be a mapping of keys, got {type(values).__name__}")
        overrides += [(f"{section}.{key}", value, where) for key, value in values.items()]
    return apply_overrides(base if base is not None else TrainConfig(), overrides)


def apply_overrides(cfg: TrainConfig, overrides: Sequence[Override]) -> TrainConfig:
    """Return a copy of `cfg` with every `section.key` set (strings converted by the field's type).

    Sections are rebuilt once, after all overrides, so a combination that is only valid as a
    whole (e.g. load_in_4bit and lora together) never fails half-way.
    """
    values = config_to_dict(cfg)
    for dotted, value, where in overrides:
        _set_in(values, dotted, value, where)
    sections = {}
    for name, cls in SECTIONS.items():
        try:
            sections[name] = cls(**values[name])
        except DumpError as e:  # ModelConfig validates itself in __post_init__
            raise DumpError(f"{name}: {e}") from e
    return TrainConfig(**sections)


def set_value(cfg: TrainConfig, dotted: str, value: Any, *, where: str = "--set") -> TrainConfig:
    return apply_overrides(cfg, [(dotted, value, where)])


def _set_in(values: dict[str, dict[str, Any]], dotted: str, value: Any, where: str) -> None:
    section, sep, key = dotted.partition(".")
    if not sep or not key:
        raise DumpError(f"{where}: {dotted!r} must look like section.key, e.g. grpo.lr; sections: {', '.join(SECTIONS)}")
    if section not in SECTIONS:
        raise DumpError(f"{where}: unknown section {section!r} in {dotted!r}; allowed: {', '.join(SECTIONS)}")
    key = key.replace("-", "_")
    if section == "scheduler" and key.startswith("options."):
        values["scheduler"]["options"] = {**values["scheduler"]["options"], key.split(".", 1)[1]: value}
        return
    names = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if key not in names:
        raise DumpError(f"{where}: unknown key {section}.{key}; allowed in {section}: {', '.join(names)}")
    hint = typing.get_type_hints(SECTIONS[section])[key]
    try:
        values[section][key] = coerce(value, hint)
    except (TypeError, ValueError) as e:
        raise DumpError(f"{where}: {section}.{key} must be {type_name(hint)}, got {value!r}") from e


def apply_sets(cfg: TrainConfig, pairs: Sequence[str]) -> TrainConfig:
    """Apply `--set section.key=value` pairs in order."""
    return apply_overrides(cfg, parse_sets(pairs))


def parse_sets(pairs: Sequence[str]) -> list[Override]:
    out: list[Override] = []
    for pair in pairs:
        dotted, sep, value = pair.partition("=")
        if not sep:
            raise DumpError(f"--set {pair!r} must look like section.key=value, e.g. --set grpo.lr=1e-4")
        out.append((dotted.strip(), value.strip(), "--set"))
    return out


def load_config_file(path: Path, base: TrainConfig | None = None) -> TrainConfig:
    """Read a YAML config (a hand-written one or a run dir's resolved config.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise DumpError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DumpError(f"config file {path} is not valid YAML ({str(e).splitlines()[0]})") from e
    return config_from_dict(raw, base=base, where=str(path))


def write_resolved_config(cfg: TrainConfig, path: Path) -> None:
    """Write the fully resolved config (atomically), so `dump train --config it` repeats the run."""
    doc = {"format_version": CONFIG_FORMAT_VERSION, "dump_version": __version__, **config_to_dict(cfg)}
    atomic_write_text(Path(path), yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def config_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """`section.key` of every value that differs between two configs."""
    da, db = config_to_dict(a), config_to_dict(b)
    return [f"{s}.{k}" for s in SECTIONS for k in da[s] if da[s][k] != db[s].get(k)]


# ---------------------------------------------------------------- validation


def validate_config(cfg: TrainConfig) -> None:
    """Check values and combinations before anything is loaded or written."""
    g, r = cfg.grpo, cfg.run
    positive = {"grpo.steps": g.steps, "grpo.batch_size": g.batch_size, "grpo.max_new_tokens": g.max_new_tokens,
                "grpo.num_iterations": g.num_iterations, "data.eval_rows": cfg.data.eval_rows,
                "run.eval_batch_size": r.eval_batch_size}
    for name, value in positive.items():
        if value < 1:
            raise DumpError(f"{name} must be at least 1, got {value}")
    non_negative = {"run.eval_every": r.eval_every, "run.save_every": r.save_every, "run.keep_checkpoints": r.keep_checkpoints,
                    "run.samples_per_step": r.samples_per_step, "run.threads": r.threads, "grpo.warmup_steps": g.warmup_steps,
                    "grpo.beta": g.beta, "grpo.epsilon": g.epsilon, "grpo.max_grad_norm": g.max_grad_norm,
                    "grpo.weight_decay": g.weight_decay}
    for name, value in non_negative.items():
        if value < 0:
            raise DumpError(f"{name} must be >= 0, got {value}")
    if g.num_generations < 2:
        raise DumpError(f"grpo.num_generations must be at least 2 (GRPO compares completions within a group), got {g.num_generations}")
    if not g.temperature > 0:
        raise DumpError(f"grpo.temperature must be > 0 (evaluation is greedy anyway), got {g.temperature}")
    if not 0 < g.top_p <= 1:
        raise DumpError(f"grpo.top_p must be in (0, 1], got {g.top_p}")
    if g.lr <= 0:
        raise DumpError(f"grpo.lr must be > 0, got {g.lr}")
    if g.loss_type not in LOSS_TYPES:
        raise DumpError(f"grpo.loss_type {g.loss_type!r} is unknown; allowed: {', '.join(LOSS_TYPES)}")
    if g.lr_schedule not in LR_SCHEDULES:
        raise DumpError(f"grpo.lr_schedule {g.lr_schedule!r} is unknown; allowed: {', '.join(LR_SCHEDULES)}")
    if g.epsilon_high is not None and g.epsilon_high < 0:
        raise DumpError(f"grpo.epsilon_high must be >= 0, got {g.epsilon_high}")
    total = cfg.completions_per_step
    if g.micro_batch_size is not None and (g.micro_batch_size < 1 or total % g.micro_batch_size):
        raise DumpError(
            f"grpo.micro_batch_size {g.micro_batch_size} must divide batch_size x num_generations = {total}; "
            f"pick a divisor such as {_divisor_hint(total, g.micro_batch_size)}"
        )
    if g.beta > 0 and not cfg.model.lora:
        raise DumpError("grpo.beta > 0 needs LoRA (the reference is the base model with the adapter disabled); "
                        "set grpo.beta=0 or model.lora=true")


def _divisor_hint(total: int, wanted: int) -> int:
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))
