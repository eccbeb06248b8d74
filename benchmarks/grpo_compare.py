"""dump's GRPO step and TRL's GRPOTrainer on one TrainConfig, timed the same way.

The code benchmarks/step_time.py (CPU, side by side) and benchmarks/gpu_check.py (the GPU check)
share. Both sides train the model dump's loader builds from `cfg.model`: TRL gets the very
LoRA-wrapped PeftModel, so weights, LoRA targets and LoRA initialisation are identical. Prompts come
from `cfg.data`, rendered by dump (chat template + prefill); batch, group size, completion length,
micro-batch, learning rate, clipping, loss type, KL coefficient and gradient checkpointing are
mapped one to one. Run each side in its own process, so that its peak memory is its own.

Each timed step is bracketed by `torch.cuda.synchronize()` on a GPU, so the wall time is the GPU's.
`generation_s` is the rollout: dump's `generation_time_s` metric, TRL's `_generate_and_score_completions`
(which also scores the rewards, a few milliseconds here).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class StepRecord:
    step_s: float  # wall time of the whole optimizer step
    generation_s: float  # of which the rollout
    mean_length: float  # mean completion length in tokens


def synchronize() -> None:
    """Wait for queued GPU work, so host wall clocks measure it; nothing on CPU."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def current_rss_mb() -> float:
    """Resident memory now (Linux /proc), in MiB; 0 where /proc is missing."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def peak_memory_mb() -> dict[str, float | None]:
    """This process's peaks: host RSS, and on a GPU torch's allocated and reserved (caching allocator) memory."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "cuda_peak_reserved_mb": torch.cuda.max_memory_reserved() / 2**20 if cuda else None,
    }


def with_steps(cfg: Any, steps: int, out: str) -> Any:
    """`cfg` for a timing run: `steps` steps into run dir `out`, no evaluation, no progress display."""
    return dataclasses.replace(
        cfg,
        grpo=dataclasses.replace(cfg.grpo, steps=steps),
        run=dataclasses.replace(cfg.run, out=out, eval_at_start=False, eval_every=0, progress=False),
    )


def run_ours(cfg: Any, steps: int) -> dict[str, Any]:
    """`steps` steps of dump's trainer on `cfg` (the first is the warm-up the caller drops)."""
    from dumpcli.train.setup import build_trainer

    records = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(with_steps(cfg, steps, str(Path(tmp) / "run")))
        setup_rss = current_rss_mb()
        for _ in range(steps):
            synchronize()
            started = time.perf_counter()
            metrics = trainer.train_step()
            synchronize()
            records.append(StepRecord(time.perf_counter() - started, metrics["generation_time_s"],
                                      metrics["completions/mean_length"]))
    return {"steps": [asdict(r) for r in records], "setup_rss_mb": setup_rss}


def trl_dataset(cfg: Any, tokenizer: Any) -> Any:
    """`cfg.data`'s train rows as TRL plain-text prompts: chat template + prefill, as dump renders them."""
    from datasets import Dataset

    from dumpcli.policy import render_prompts
    from dumpcli.train.setup import resolve_dataset

    rows = resolve_dataset(cfg.data).rows("train")
    texts = render_prompts(tokenizer, [r["prompt"] for r in rows], [r["prefill"] for r in rows])
    return Dataset.from_dict({
        "prompt": texts,
        "prefill": [r["prefill"] for r in rows],
        "answer": [r["answer"] for r in rows],
        "distribution": [r["distribution"] for r in rows],
    })


def trl_reward(rewards_by_distribution: dict[str, Any]) -> Any:
    """TRL reward function calling dump's registered reward of each row's distribution."""

    def reward(prompts: list[str], completions: list[str], prefill: list[str], answer: list[str],
               distribution: list[str], **_: Any) -> list[float]:
        return [rewards_by_distribution[d](p + c, a).reward
                for c, p, a, d in zip(completions, prefill, answer, distribution)]

    return reward


# dump's lr_schedule -> transformers' lr_scheduler_type (both warm up linearly over warmup_steps first)
TRL_LR_SCHEDULES = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


def trl_args(cfg: Any, out: str, steps: int, device: Any, dtype: Any) -> Any:
    """TRL's GRPOConfig for the same step as dump's `cfg` (one generation per optimizer step)."""
    import torch
    from trl import GRPOConfig

    g = cfg.grpo
    completions = g.batch_size * g.num_generations
    micro = g.micro_batch_size or completions
    return GRPOConfig(
        output_dir=out, max_steps=steps, seed=cfg.run.seed,
        per_device_train_batch_size=micro, gradient_accumulation_steps=completions // micro,
        num_generations=g.num_generations, max_completion_length=g.max_new_tokens,
        temperature=g.temperature, top_p=g.top_p, top_k=0,  # dump's sampler: no top-k
        learning_rate=g.lr, lr_scheduler_type=TRL_LR_SCHEDULES[g.lr_schedule], warmup_steps=g.warmup_steps,
        weight_decay=g.weight_decay, adam_beta1=g.adam_beta1, adam_beta2=g.adam_beta2, max_grad_norm=g.max_grad_norm,
        beta=g.beta, epsilon=g.epsilon, epsilon_high=g.epsilon_high if g.epsilon_high is not None else g.epsilon,
        loss_type=g.loss_type, scale_rewards="group" if g.scale_rewards else "none", num_iterations=g.num_iterations,
        # TRL's default is on; follow dump's config, non-reentrant as dump's loader enables it
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        bf16=device.type == "cuda" and dtype == torch.bfloat16, fp16=False, use_cpu=device.type != "cuda",
        logging_steps=1, report_to="none", save_strategy="no", remove_unused_columns=False,
        dataloader_num_workers=0, log_completions=False, disable_tqdm=True,
    )


def run_trl(cfg: Any, steps: int) -> dict[str, Any]:
    """`steps` steps of TRL's GRPOTrainer on the same model, data and step shape as `run_ours(cfg)`."""
    import torch
    from transformers import TrainerCallback
    from trl import GRPOTrainer

    from dumpcli.policy import load_policy
    from dumpcli.rewards import get_reward
    from dumpcli.train.setup import hf_progress_bars_off, resolve_dataset

    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    with hf_progress_bars_off():
        loaded = load_policy(cfg.model, cfg.run.seed)  # LoRA-wrapped when cfg.model.lora: TRL trains this PeftModel
    dataset_dir = resolve_dataset(cfg.data)
    rewards = {d.name: get_reward(d.reward) for d in dataset_dir.distributions}
    step_s: list[float] = []
    generation_s: list[float] = []
    lengths: list[float] = []

    class TimedGRPOTrainer(GRPOTrainer):
        # Subclassed only to time the rollout phase; the step itself is TRL's own.
        def _generate_and_score_completions(self, inputs: Any) -> Any:
            synchronize()
            started = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            synchronize()
            generation_s.append(time.perf_counter() - started)
            return out

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            synchronize()
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            synchronize()
            step_s.append(time.perf_counter() - self.started)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
            if logs and "completions/mean_length" in logs:
                lengths.append(logs["completions/mean_length"])

    with tempfile.TemporaryDirectory() as tmp:
        trainer = TimedGRPOTrainer(
            model=loaded.model, reward_funcs=[trl_reward(rewards)],
            args=trl_args(cfg, tmp, steps, loaded.device, loaded.dtype),
            train_dataset=trl_dataset(cfg, loaded.tokenizer), processing_class=loaded.tokenizer,
            callbacks=[StepTimer()],
        )
        setup_rss = current_rss_mb()
        trainer.train()
    if not (len(step_s) == len(generation_s) == len(lengths) == steps):
        raise RuntimeError(f"TRL timed {len(step_s)} steps, {len(generation_s)} generations and logged "
                           f"{len(lengths)} lengths; expected {steps} of each (one generation per optimizer step)")
    records = [StepRecord(s, g, n) for s, g, n in zip(step_s, generation_s, lengths)]
    return {"steps": [asdict(r) for r in records], "setup_rss_mb": setup_rss}


SIDES = {"ours": run_ours, "trl": run_trl}
