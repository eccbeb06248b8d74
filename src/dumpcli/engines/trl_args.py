"""dump's config -> `trl.GRPOConfig`: the one table, and the keys TRL has no equivalent for.

Every key of `TrainConfig` is in exactly one of three places (a test checks it):
- `TABLE`: becomes a GRPOConfig field (some with a conversion: names, units, the batch layout);
- `DUMP_SIDE`: handled by dump itself around TRL (data, scheduler, model loading, the run dir, evaluation);
- `REFUSED`: TRL cannot do what the value asks; any other value than the one TRL has is a one-line error.

The batch: `grpo.batch_size` prompts x `grpo.num_generations` completions per optimizer step, across
all processes, as with `--engine dump`. With W processes and micro-batch m (completions per forward,
default all of a process's share) TRL gets per_device_train_batch_size = m and
gradient_accumulation_steps = batch_size x num_generations / (W x m): one generation round per step.
Nothing here imports TRL; `dumpcli.engines.trl` checks `trl.args` against GRPOConfig's fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dumpcli.config import SECTIONS, TrainConfig
from dumpcli.errors import DumpError

# dump's loss_type names -> TRL's: dump's bnpo averages over every completion token of the step,
# which TRL calls dapo (TRL's own bnpo normalises per process and micro-batch).
LOSS_TYPES = {"grpo": "grpo", "bnpo": "dapo", "dr_grpo": "dr_grpo"}
TRL_ADVANTAGE_EPS = 1e-4  # added to the group std in GRPOTrainer._generate_and_score_completions


@dataclass(frozen=True)
class Row:
    key: str  # dump's config key (section.key)
    field: str  # trl.GRPOConfig field
    value: Callable[[TrainConfig, int], Any]  # (config, number of processes) -> the field's value


def micro_batch(cfg: TrainConfig, world: int) -> int:
    """Completions per forward/backward on one process (TRL's per_device_train_batch_size)."""
    total, micro = cfg.completions_per_step, cfg.grpo.micro_batch_size
    if total % world:
        raise DumpError(f"grpo.batch_size x num_generations = {total} completions cannot be split over {world} processes; "
                        f"make it a multiple of {world}")
    per_process = total // world
    if micro is None:
        return per_process
    if per_process % micro:
        raise DumpError(f"grpo.micro_batch_size {micro} must divide each process's {per_process} completions "
                        f"({total} over {world} processes); pick a divisor of {per_process}")
    return micro


def _lr_schedule(cfg: TrainConfig, world: int) -> str:
    schedule = cfg.grpo.lr_schedule
    return "constant_with_warmup" if schedule == "constant" and cfg.grpo.warmup_steps else schedule


TABLE: tuple[Row, ...] = (
    Row("grpo.steps", "max_steps", lambda c, w: c.grpo.steps * c.grpo.num_iterations),  # TRL: one optimizer step per iteration
    Row("grpo.batch_size", "gradient_accumulation_steps", lambda c, w: c.completions_per_step // (w * micro_batch(c, w))),
    Row("grpo.micro_batch_size", "per_device_train_batch_size", micro_batch),
    Row("grpo.num_generations", "num_generations", lambda c, w: c.grpo.num_generations),
    Row("grpo.max_new_tokens", "max_completion_length", lambda c, w: c.grpo.max_new_tokens),
    Row("grpo.temperature", "temperature", lambda c, w: c.grpo.temperature),
    Row("grpo.top_p", "top_p", lambda c, w: c.grpo.top_p),
    Row("grpo.lr", "learning_rate", lambda c, w: c.grpo.lr),
    Row("grpo.lr_schedule", "lr_scheduler_type", _lr_schedule),
    Row("grpo.warmup_steps", "warmup_steps", lambda c, w: c.grpo.warmup_steps),
    Row("grpo.weight_decay", "weight_decay", lambda c, w: c.grpo.weight_decay),
    Row("grpo.adam_beta1", "adam_beta1", lambda c, w: c.grpo.adam_beta1),
    Row("grpo.adam_beta2", "adam_beta2", lambda c, w: c.grpo.adam_beta2),
    Row("grpo.max_grad_norm", "max_grad_norm", lambda c, w: c.grpo.max_grad_norm),
    Row("grpo.epsilon", "epsilon", lambda c, w: c.grpo.epsilon),
    Row("grpo.epsilon_high", "epsilon_high", lambda c, w: c.grpo.epsilon_high),
    Row("grpo.beta", "beta", lambda c, w: c.grpo.beta),
    Row("grpo.loss_type", "loss_type", lambda c, w: LOSS_TYPES[c.grpo.loss_type]),
    Row("grpo.scale_rewards", "scale_rewards", lambda c, w: "group" if c.grpo.scale_rewards else "none"),
    Row("grpo.num_iterations", "num_iterations", lambda c, w: c.grpo.num_iterations),
    Row("model.gradient_checkpointing", "gradient_checkpointing", lambda c, w: c.model.gradient_checkpointing),
    Row("model.device", "use_cpu", lambda c, w: c.model.device == "cpu"),
    Row("run.seed", "seed", lambda c, w: c.run.seed),
    Row("trl.use_vllm", "use_vllm", lambda c, w: c.trl.use_vllm),
    Row("trl.vllm_mode", "vllm_mode", lambda c, w: c.trl.vllm_mode),
    Row("trl.vllm_server_base_url", "vllm_server_base_url", lambda c, w: c.trl.vllm_server_base_url),
    Row("trl.vllm_gpu_memory_utilization", "vllm_gpu_memory_utilization", lambda c, w: c.trl.vllm_gpu_memory_utilization),
    Row("trl.vllm_tensor_parallel_size", "vllm_tensor_parallel_size", lambda c, w: c.trl.vllm_tensor_parallel_size),
    Row("trl.deepspeed", "deepspeed", lambda c, w: c.trl.deepspeed),
    Row("trl.fsdp", "fsdp", lambda c, w: c.trl.fsdp or None),
)

# Fixed GRPOConfig values: dump's sampler, callbacks and run dir do these jobs.
FIXED: dict[str, Any] = {
    "top_k": 0, "bf16": False, "fp16": False,  # the model is trained in model.dtype, as --engine dump does
    "logging_steps": 1, "report_to": "none", "disable_tqdm": True, "log_completions": False,
    "save_strategy": "steps", "save_steps": 10**9,  # dump's callback asks for each save (run.save_every)
    "eval_strategy": "no", "remove_unused_columns": False, "dataloader_num_workers": 0,
    "ignore_data_skip": True,  # on resume the sampler continues from its own state; skipping would draw again
    "shuffle_dataset": False,
}

# Keys dump handles itself around TRL's loop.
DUMP_SIDE = {
    "model": ("name", "dtype", "lora", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "load_in_4bit"),
    "data": ("path", "recipe", "distributions", "eval_rows"),
    "scheduler": ("name", "options"),
    "grpo": ("max_generation_rounds",),  # read only with filter_zero_std_groups, which TRL cannot do (below)
    "run": ("out", "eval_every", "eval_at_start", "eval_batch_size", "eval_samples", "save_every", "keep_checkpoints",
            "samples_per_step", "deterministic", "threads", "progress", "engine"),
    "trl": ("args",),
}

# key -> (the only value TRL supports, why)
REFUSED: dict[str, tuple[Any, str]] = {
    "grpo.advantage_eps": (TRL_ADVANTAGE_EPS, "TRL adds a fixed 1e-4 to the group std (GRPOTrainer._generate_and_score_completions)"),
    "grpo.filter_zero_std_groups": (False, "TRL's GRPOTrainer has no dynamic sampling (trl issue #3708)"),
}


def grpo_config_kwargs(cfg: TrainConfig, world: int, output_dir: str) -> dict[str, Any]:
    """The keyword arguments of trl.GRPOConfig for `cfg` on `world` processes; DumpError for a refused value."""
    for key, (allowed, why) in REFUSED.items():
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value != allowed:
            raise DumpError(f"{key}={value} has no TRL equivalent: {why}; set {key}={allowed} or use --engine dump")
    kwargs = {row.field: row.value(cfg, world) for row in TABLE}
    clash = sorted(set(cfg.trl.args) & (set(kwargs) | set(FIXED) | {"output_dir"}))
    if clash:
        raise DumpError(f"trl.args.{clash[0]} is set by dump itself; use the dump key that maps to it (docs/engines.md)")
    return {**kwargs, **FIXED, **cfg.trl.args, "output_dir": output_dir}


def classified_keys() -> dict[str, str]:
    """Every config key -> 'table' | 'dump' | 'refused' (docs and the completeness test read this)."""
    out: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            kinds = [kind for kind, hit in (("table", any(r.key == key for r in TABLE)),
                                             ("dump", f.name in DUMP_SIDE.get(section, ())),
                                             ("refused", key in REFUSED)) if hit]
            out[key] = "+".join(kinds) or "unclassified"
    return out
