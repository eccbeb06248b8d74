"""The training config: one dataclass per concern (model, data, grpo, scheduler, run).

Flags -> TrainConfig -> resolved `config.yaml` in the run dir -> logs. Sources, later ones winning:
the defaults below, `--config file.yaml`, the common flags, then `--set section.key=value`.
Unknown sections or keys are errors that list the allowed ones, so a typo never trains silently
with a default.

    dump train --config examples/configs/ladder-tiny.yaml --set grpo.lr=3e-4 --set run.eval_every=20
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dumpcli import __version__
from dumpcli.engines import ENGINES
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_write_text
from dumpcli.values import coerce, coerce_fields, type_name

CONFIG_FORMAT_VERSION = 1
LOSS_TYPES = ("grpo", "bnpo", "dr_grpo")  # the table lives in dumpcli.train.grpo; names as TRL's loss_type
LR_SCHEDULES = ("constant", "linear", "cosine")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelConfig:
    name: str = field(
        default="smollm2-135m",
        metadata={"help": "Policy model: smollm2-135m | tiny-random | a local HF folder | a hub id."},
    )
    dtype: str = field(
        default="auto", metadata={"help": "auto|float32|bfloat16|float16; auto = bf16 on CUDA, fp32 on CPU."}
    )
    lora: bool = field(default=True, metadata={"help": "Train a LoRA adapter; off = full fine-tune (tiny-random)."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha; the update is scaled by alpha / r."})
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input; 0 keeps RL rollouts exact."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Module names to adapt; default q/k/v/o_proj for Llama/Qwen2/Mistral, else all *proj."},
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward: less memory, ~30% slower."}
    )
    load_in_4bit: bool = field(default=False, metadata={"help": "QLoRA: 4-bit NF4 base weights (CUDA + bitsandbytes)."})
    device: str = field(default="auto", metadata={"help": "auto|cpu|cuda; auto = cuda when available."})

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise DumpError naming the first bad field and the allowed values."""
        if self.dtype not in DTYPES:
            raise DumpError(f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        if self.device not in DEVICES:
            raise DumpError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        if self.lora_r < 1:
            raise DumpError(f"lora_r must be a positive integer, got {self.lora_r}")
        if self.lora_alpha <= 0:
            raise DumpError(f"lora_alpha must be positive, got {self.lora_alpha}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise DumpError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.lora_target_modules is not None and not self.lora_target_modules:
            raise DumpError("lora_target_modules is empty; leave it unset for the per-architecture default")
        if self.load_in_4bit and not self.lora:
            raise DumpError("--load-in-4bit needs LoRA (4-bit weights cannot be trained); keep model.lora=true or drop --load-in-4bit")


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
    filter_zero_std_groups: bool = field(default=False, metadata={"help": "DAPO's dynamic sampling: replace groups whose rewards are all equal (no signal) by newly drawn ones before the update."})
    max_generation_rounds: int = field(default=4, metadata={"help": "With filter_zero_std_groups: at most this many generation rounds per step; still short, the batch is topped up with groups without signal."})
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
    eval_samples: int = field(default=4, metadata={"help": "Also sample this many completions per test row at grpo.temperature: eval.jsonl's sampled_accuracy; 0 = greedy only."})
    save_every: int = field(default=0, metadata={"help": "Checkpoint every this many steps; 0 = only at the end (and on Ctrl-C)."})
    keep_checkpoints: int = field(default=2, metadata={"help": "Keep the newest this many checkpoints; 0 = keep all."})
    samples_per_step: int = field(default=2, metadata={"help": "Completions written to samples.jsonl per step (bounded log)."})
    deterministic: bool = field(default=False, metadata={"help": "torch.use_deterministic_algorithms, for bit-exact resume tests."})
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = torch's default."})
    progress: bool = field(default=True, metadata={"help": "Live progress bar and table on stderr."})
    engine: str = field(default="dump", metadata={"help": "Trainer: dump (one device, fast) | trl (TRL's GRPOTrainer: accelerate, DeepSpeed/FSDP, vLLM); docs/engines.md."})


VLLM_MODES = ("colocate", "server")


@dataclass
class TRLConfig:
    """TRL's own options, passed through to `trl.GRPOConfig` by `--engine trl` (docs/engines.md).

    Every other key of this config maps to GRPOConfig through one table (dumpcli.engines.trl_args).
    """

    use_vllm: bool = field(default=False, metadata={"help": "Generate rollouts with vLLM (CUDA + `pip install vllm`)."})
    vllm_mode: str = field(default="colocate", metadata={"help": "colocate: vLLM inside each training process | server: a `trl vllm-serve` process."})
    vllm_server_base_url: str | None = field(default=None, metadata={"help": "vllm_mode=server: the server's URL, e.g. http://10.0.0.2:8000."})
    vllm_gpu_memory_utilization: float = field(default=0.3, metadata={"help": "vllm_mode=colocate: share of each GPU's memory vLLM may take."})
    vllm_tensor_parallel_size: int = field(default=1, metadata={"help": "vllm_mode=colocate: GPUs one vLLM engine spans."})
    deepspeed: str | None = field(default=None, metadata={"help": "DeepSpeed JSON config file (ZeRO-2/3); or pass it through `accelerate launch --config_file`."})
    fsdp: str | None = field(default=None, metadata={"help": "FSDP options as transformers names them, e.g. 'full_shard auto_wrap'."})
    args: dict[str, Any] = field(default_factory=dict, metadata={"help": "Any other trl.GRPOConfig field by TRL's name (not one dump's config already sets), e.g. {logging_dir: tb}."})


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    trl: TRLConfig = field(default_factory=TRLConfig)

    @property
    def completions_per_step(self) -> int:
        return self.grpo.batch_size * self.grpo.num_generations


@dataclass(frozen=True)
class Flag:
    """A `dump train` flag that sets one config key; its type and help come from the config field."""

    key: str  # section.key
    short: str | None = None  # e.g. "-b"
    long: str | None = None  # the parameter name when the key's own name would be unclear

    @property
    def name(self) -> str:
        """The parameter name and, with dashes, the long flag: grpo.batch_size -> batch_size / --batch-size."""
        return self.long or self.key.split(".", 1)[1]


# The common `dump train` flags, declared once: commands/train.py builds the options from this table,
# with the field's type and help text; every other key is reachable with --set section.key=value.
TRAIN_FLAGS: tuple[Flag, ...] = (
    Flag("scheduler.name", "-s", "scheduler"), Flag("model.name", "-m", "model"), Flag("data.path", "-d", "data"), Flag("grpo.steps"),
    Flag("grpo.batch_size", "-b"), Flag("grpo.num_generations", "-G"), Flag("grpo.max_new_tokens"),
    Flag("grpo.lr"), Flag("run.seed"), Flag("run.out", "-o"), Flag("run.eval_every"), Flag("run.save_every"),
    Flag("model.load_in_4bit"), Flag("run.engine", long="engine"),
)


def field_info(key: str) -> tuple[Any, str]:
    """(type, help) of config key `section.key`."""
    section, name = key.split(".", 1)
    cls = SECTIONS[section]
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    return typing.get_type_hints(cls)[name], f.metadata.get("help", "")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "data": DataConfig,
    "grpo": GRPOConfig,
    "scheduler": SchedulerConfig,
    "run": RunConfig,
    "trl": TRLConfig,
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
    for mapping in ("scheduler.options", "trl.args"):  # open mappings: --set scheduler.options.window=100
        if f"{section}.{key}".startswith(mapping + "."):
            inner = mapping.split(".")[1]
            values[section][inner] = {**values[section][inner], key.split(".", 1)[1]: value}
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
    if path.is_dir():
        raise DumpError(f"config file {path} is a directory; pass a YAML file to --config (a run's is RUN/config.yaml)")
    if not path.is_file():
        raise DumpError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DumpError(f"config file {path} is not valid YAML ({str(e).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise DumpError(f"config file {path} is not UTF-8 text; pass a YAML file to --config") from None
    except OSError as e:
        raise DumpError(f"config file {path} is unreadable ({e.strerror})") from None
    if raw is None:
        raise DumpError(f"config file {path} is empty; give it sections such as grpo: or run:, or drop --config")
    return config_from_dict(raw, base=base, where=str(path))


def resolve_paths(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with data.path absolute, so the run's config.yaml means the same from any directory."""
    if cfg.data.path is None or Path(cfg.data.path).is_absolute():
        return cfg
    resolved = str(Path(cfg.data.path).expanduser().resolve())
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, path=resolved))


def write_resolved_config(cfg: TrainConfig, path: Path) -> None:
    """Write the fully resolved config (atomically), so `dump train --config it` repeats the run."""
    doc = {"format_version": CONFIG_FORMAT_VERSION, "dump_version": __version__, **config_to_dict(cfg)}
    atomic_write_text(Path(path), yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))


def config_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """`section.key` of every value that differs between two configs."""
    da, db = config_to_dict(a), config_to_dict(b)
    return [f"{s}.{k}" for s in SECTIONS for k in da[s] if da[s][k] != db[s].get(k)]


# ---------------------------------------------------------------- scheduler options


def scheduler_options(name: str, raw: Mapping[str, Any]) -> Any:
    """The options dataclass of scheduler `name`, from config/CLI values (strings converted by type).

    The one conversion of scheduler options. Unknown or ill-typed options raise DumpError
    naming the option and the allowed ones; range checks live in the options dataclass's
    `__post_init__`. Typed values pass through unchanged, so this is idempotent.
    """
    from dumpcli.scheduler import get_scheduler_class  # the plugin, looked up only when options are resolved

    options_class = get_scheduler_class(name).options_class
    spelled = {str(key).replace("-", "_"): key for key in raw}  # weight-by-size is weight_by_size
    values = coerce_fields(
        options_class, {k: raw[key] for k, key in spelled.items()},
        unknown=lambda k, fields: f"scheduler {name!r} has no option {spelled[k]!r}; its options: {', '.join(fields) or 'none'}",
        invalid=lambda k, value, kind: f"scheduler {name!r} option {spelled[k]!r} must be {kind}, got {value!r}",
    )
    return options_class(**values)


def resolve_options(name: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every option of scheduler `name`, defaults filled in and values typed: what config.yaml stores."""
    return dataclasses.asdict(scheduler_options(name, options or {}))


def resolve_scheduler(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its scheduler options typed and complete, so equal values compare equal (resume)."""
    options = resolve_options(cfg.scheduler.name, cfg.scheduler.options)
    return dataclasses.replace(cfg, scheduler=dataclasses.replace(cfg.scheduler, options=options))


def parse_option_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """`["window=100", "c=0.5"]` -> `{"window": "100", "c": "0.5"}` (typed later by `scheduler_options`)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DumpError(f"scheduler option {pair!r} must look like key=value, e.g. --scheduler-option window=100")
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------- validation


MAX_SEED = 2**63 - 1  # torch.manual_seed takes at most a signed 64-bit seed


def validate_config(cfg: TrainConfig) -> None:
    """Check values and combinations before anything is loaded or written."""
    g, r = cfg.grpo, cfg.run
    for section in SECTIONS:
        for key, value in dataclasses.asdict(getattr(cfg, section)).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise DumpError(f"{section}.{key} must be a finite number, got {value}")
    if not 0 <= r.seed <= MAX_SEED:
        raise DumpError(f"run.seed must be in [0, 2**63 - 1], got {r.seed}")
    positive = {"grpo.steps": g.steps, "grpo.batch_size": g.batch_size, "grpo.max_new_tokens": g.max_new_tokens,
                "grpo.num_iterations": g.num_iterations, "grpo.max_generation_rounds": g.max_generation_rounds,
                "data.eval_rows": cfg.data.eval_rows,
                "run.eval_batch_size": r.eval_batch_size}
    for name, value in positive.items():
        if value < 1:
            raise DumpError(f"{name} must be at least 1, got {value}")
    non_negative = {"run.eval_every": r.eval_every, "run.save_every": r.save_every, "run.keep_checkpoints": r.keep_checkpoints,
                    "run.samples_per_step": r.samples_per_step, "run.threads": r.threads, "run.eval_samples": r.eval_samples, "grpo.warmup_steps": g.warmup_steps,
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
    if r.engine not in ENGINES:
        raise DumpError(f"run.engine {r.engine!r} is unknown; allowed: {', '.join(ENGINES)}")
    if cfg.trl.vllm_mode not in VLLM_MODES:
        raise DumpError(f"trl.vllm_mode {cfg.trl.vllm_mode!r} is unknown; allowed: {', '.join(VLLM_MODES)}")
    if r.engine != "trl":
        changed = [f"trl.{k}" for k, v in dataclasses.asdict(cfg.trl).items() if v != getattr(TRLConfig(), k)]
        if changed:
            raise DumpError(f"{changed[0]} is set, but only --engine trl reads the trl section; add --engine trl or drop it")
    if g.beta > 0 and not cfg.model.lora:
        raise DumpError("grpo.beta > 0 needs LoRA (the reference is the base model with the adapter disabled); "
                        "set grpo.beta=0 or model.lora=true")


def _divisor_hint(total: int, wanted: int) -> int:
    divisors = [d for d in range(1, total + 1) if total % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))
