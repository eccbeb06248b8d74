"""The GRPO trainer: one step reads top to bottom as it runs.

    draw -> generate -> reward -> advantage -> loss -> update -> scheduler update -> log

    from dumpcli.config import TrainConfig
    from dumpcli.trainer import build_trainer
    trainer = build_trainer(cfg)            # validates everything, then creates the run dir
    summary = trainer.fit()                  # or trainer.train_step() one step at a time

Everything random is seeded from `run.seed` and checkpointed (torch / numpy / python RNGs, the
trainer's own prompt RNG, the scheduler's state), so `--resume` continues the exact same run.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.config import GRPOConfig, TrainConfig
from dumpcli.errors import DumpError
from dumpcli.evaluate import EvalSet, evaluate
from dumpcli.fsutil import append_jsonl, atomic_write_json
from dumpcli.grpo import BatchSize, group_advantages, grpo_loss
from dumpcli.runs import (RunDir, capture_rng_states, load_rng_states, prune_checkpoints, read_trainer_state,
                          restore_rng_states, save_rng_states, write_checkpoint)
from dumpcli.training_setup import TrainingInputs, hf_progress_bars_off

StepCallback = Callable[["Trainer", dict[str, Any]], None]


class TrainingInterrupted(Exception):
    """Ctrl-C: the last completed step was checkpointed; `checkpoint` is where (None at step 0)."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step, self.checkpoint = step, checkpoint


def learning_rate(g: GRPOConfig, step: int) -> float:
    """Learning rate of (1-based) `step`: linear warmup, then constant / linear / cosine decay."""
    if g.warmup_steps and step <= g.warmup_steps:
        return g.lr * step / g.warmup_steps
    progress = (step - 1 - g.warmup_steps) / max(1, g.steps - g.warmup_steps)
    if g.lr_schedule == "linear":
        return g.lr * (1.0 - progress)
    if g.lr_schedule == "cosine":
        return g.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return g.lr


@dataclass
class Trainer:
    inputs: TrainingInputs
    run: RunDir
    step: int = 0
    elapsed_s: float = 0.0
    last_checkpoint_step: int = -1
    on_step: list[StepCallback] = field(default_factory=list)
    on_eval: list[StepCallback] = field(default_factory=list)

    def __post_init__(self) -> None:
        import torch

        g = self.cfg.grpo
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=g.lr, betas=(g.adam_beta1, g.adam_beta2), weight_decay=g.weight_decay
        )
        # The prompt within a distribution comes from the trainer's own stream, separate from the
        # scheduler's, so a scheduler change never shifts which prompts a distribution serves.
        self.data_rng = np.random.default_rng([self.cfg.run.seed, 0xDA7A])
        from dumpcli.generation import eos_token_ids

        self.eos_ids = torch.tensor(eos_token_ids(self.inputs.loaded), device=self.inputs.loaded.device)

    @property
    def cfg(self) -> TrainConfig:
        return self.inputs.cfg

    @property
    def model(self) -> Any:
        return self.inputs.loaded.model

    @property
    def names(self) -> list[str]:
        return self.inputs.names

    # ------------------------------------------------------------ the step

    def train_step(self) -> dict[str, Any]:
        """One optimizer step on one freshly drawn batch; returns (and logs) its metrics row."""
        import torch

        from dumpcli.models import generate, render_prompts

        g, started, step = self.cfg.grpo, time.perf_counter(), self.step + 1
        # Draw: a distribution per prompt slot from the scheduler, a prompt uniformly within it
        probabilities = self.inputs.scheduler.probabilities()  # [K]
        slots = self.inputs.scheduler.draw(g.batch_size)  # [B] distribution index of each slot
        rows = [self._pick_prompt(int(j)) for j in slots]
        # Generate: G completions per prompt, rows grouped per prompt
        texts = render_prompts(self.inputs.loaded.tokenizer, [r["prompt"] for r in rows], [r["prefill"] for r in rows])
        self.model.eval()
        with torch.no_grad():
            rollout = generate(self.inputs.loaded, texts, g.num_generations, g.max_new_tokens,
                               temperature=g.temperature, top_p=g.top_p)
        # Reward: each distribution's own reward function scores prefill + completion
        row_of = np.repeat(np.arange(g.batch_size), g.num_generations)  # [N] prompt slot of each completion
        results = [self.inputs.rewards[int(slots[i])](rows[i]["prefill"] + text, rows[i]["answer"])
                   for i, text in zip(row_of, rollout.texts)]
        rewards = torch.tensor([r.reward for r in results], dtype=torch.float32)  # [N]
        # Advantage: group-normalised, one scalar per completion
        advantages, group_std = group_advantages(rewards, g.num_generations, g.scale_rewards, g.advantage_eps)
        # The scheduler's learnability signal is the normalised advantage (ALGORITHM.md) even when
        # the loss uses unscaled ones (Dr. GRPO): the reward's scale must not decide the curriculum.
        learnability = advantages if g.scale_rewards else group_advantages(
            rewards, g.num_generations, True, g.advantage_eps)[0]  # [N]
        # Loss + update
        lr = learning_rate(g, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # From here on the step changes the model: a Ctrl-C waits until the whole step is done.
        with _sigint_deferred():
            update = self._policy_update(rollout, advantages.to(self.inputs.loaded.device))
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            dist_of = slots[row_of]  # [N] distribution index of each completion
            adv_np, rew_np = learnability.numpy().astype(np.float64), rewards.numpy().astype(np.float64)
            self.inputs.scheduler.update([adv_np[dist_of == j] for j in range(len(self.names))],
                                         [rew_np[dist_of == j] for j in range(len(self.names))])
            step_time = time.perf_counter() - started
            self.step, self.elapsed_s = step, self.elapsed_s + step_time
            metrics = self._metrics_row(probabilities, slots, dist_of, results, rewards, learnability, group_std,
                                        rollout, update, lr, step_time)
            append_jsonl(self.run.metrics_path, metrics)
            self._log_samples(rows, rollout.texts, results, advantages)
        for callback in self.on_step:
            callback(self, metrics)
        return metrics

    def _pick_prompt(self, dist: int) -> dict[str, Any]:
        pool = self.inputs.train_rows[dist]
        return pool[int(self.data_rng.integers(len(pool)))]

    def _policy_update(self, rollout: Any, advantages: Any) -> dict[str, float]:
        """num_iterations PPO updates on the batch, in micro-batches; gradients left for optimizer.step()."""
        import torch

        from dumpcli.models import per_token_logprobs, reference_adapter_disabled

        g, model = self.cfg.grpo, self.model
        n = rollout.completion_ids.shape[0]
        micro = g.micro_batch_size or n
        size = BatchSize(rows=n, tokens=float(rollout.completion_mask.sum()), max_new_tokens=g.max_new_tokens)
        batch = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
        # Log-probs of the tempered softmax the completions were sampled from (as TRL).
        logprobs = functools.partial(per_token_logprobs, model, temperature=g.temperature)
        with torch.no_grad():
            # On-policy (num_iterations 1) the old log-probs are the current ones, detached: ratio 1.
            old = logprobs(*batch) if g.num_iterations > 1 else None  # [N, C]
            ref = None
            if g.beta > 0:
                with reference_adapter_disabled(model):
                    ref = logprobs(*batch)  # [N, C]
        model.train()
        totals = {"loss": 0.0, "tokens": 0.0, "kl_sum": 0.0, "clip_low_sum": 0.0, "clip_high_sum": 0.0, "grad_norm": 0.0}
        for iteration in range(g.num_iterations):
            if iteration:  # the last iteration's gradients are left for optimizer.step() in train_step
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            for start in range(0, n, micro):
                part = slice(start, start + micro)
                logps = logprobs(*(t[part] for t in batch))  # [n, C]
                loss, stats = grpo_loss(
                    logps, old[part] if old is not None else logps.detach(), ref[part] if ref is not None else None,
                    advantages[part], rollout.completion_mask[part], size,
                    epsilon=g.epsilon, epsilon_high=g.epsilon_high, beta=g.beta, loss_type=g.loss_type,
                )
                loss.backward()
                totals["loss"] += float(loss.detach()) / g.num_iterations
                for key, value in stats.items():
                    totals[key] += value
            max_norm = g.max_grad_norm if g.max_grad_norm > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
            totals["grad_norm"] += float(norm) / g.num_iterations
        return totals

    # ------------------------------------------------------------ logging

    def _metrics_row(self, probabilities: np.ndarray, slots: np.ndarray, dist_of: np.ndarray, results: list[Any],
                     rewards: Any, learnability: Any, group_std: Any, rollout: Any, update: dict[str, float],
                     lr: float, step_time: float) -> dict[str, Any]:
        import torch

        g = self.cfg.grpo
        mask = rollout.completion_mask
        lengths = mask.sum(dim=1).float()  # [N]
        ended = (torch.isin(rollout.completion_ids, self.eos_ids) & mask.bool()).any(dim=1)  # [N] stopped at EOS
        rew, adv = rewards.numpy(), learnability.detach().cpu().numpy()
        tokens = max(update["tokens"], 1.0)
        row: dict[str, Any] = {
            "step": self.step, "time": time.time(), "elapsed_s": round(self.elapsed_s, 3),
            "loss": update["loss"], "reward": float(rew.mean()), "reward_std": float(group_std.mean()),
            "frac_reward_zero_std": float((group_std < 1e-6).float().mean()),
            "kl": update["kl_sum"] / tokens if g.beta > 0 else None,
            "clip_ratio": (update["clip_low_sum"] + update["clip_high_sum"]) / tokens,
            "grad_norm": update["grad_norm"], "learning_rate": lr,
            "completions/mean_length": float(lengths.mean()),
            "completions/clipped_ratio": float((~ended).float().mean()),
            "tokens_per_second": float(lengths.sum()) / step_time, "step_time_s": round(step_time, 4),
        }
        for part in sorted({p for r in results for p in r.parts}):
            row[f"rewards/{part}"] = float(np.mean([r.parts.get(part, 0.0) for r in results]))
        row["scheduler"] = self.cfg.scheduler.name
        row["distributions"] = {
            name: {
                "probability": float(probabilities[j]), "prompts": int((slots == j).sum()),
                "reward": float(rew[dist_of == j].mean()) if (slots == j).any() else None,
                "abs_advantage": float(np.abs(adv[dist_of == j]).mean()) if (slots == j).any() else None,
            }
            for j, name in enumerate(self.names)
        }
        return row

    def _log_samples(self, rows: list[dict[str, Any]], texts: list[str], results: list[Any], advantages: Any) -> None:
        # The first completion of the first few prompts: bounded, and no RNG is spent choosing.
        # Rows are grouped per prompt, so completion slot * G is prompt slot's first.
        g = self.cfg.grpo
        for slot in range(min(self.cfg.run.samples_per_step, g.batch_size)):
            i, row = slot * g.num_generations, rows[slot]
            append_jsonl(self.run.samples_path, {
                "step": self.step, "id": row["id"], "distribution": row["distribution"], "prefill": row["prefill"],
                "completion": texts[i], "answer": row["answer"], "reward": results[i].reward,
                "correct": results[i].correct, "advantage": float(advantages[i]),
            })

    # ------------------------------------------------------------ evaluation and checkpoints

    def evaluate(self) -> dict[str, Any]:
        """Greedy evaluation on each distribution's test rows; appended to eval.jsonl."""
        import torch

        self.model.eval()
        sets = [EvalSet(name, rows, self.inputs.rewards[j]) for j, (name, rows) in
                enumerate(zip(self.names, self.inputs.test_rows)) if rows]
        with torch.no_grad(), _rng_untouched():
            result = evaluate(self.inputs.loaded, sets, self.cfg.grpo.max_new_tokens, self.cfg.run.eval_batch_size)
        row = {"step": self.step, "time": time.time(), **result}
        append_jsonl(self.run.eval_path, row)
        for callback in self.on_eval:
            callback(self, row)
        return row

    def save_checkpoint(self) -> Path:
        """checkpoints/step-N/ with adapter, optimizer, scheduler, RNG states; atomic."""
        import torch

        from dumpcli.models import save_adapter

        def contents(tmp: Path) -> None:
            with hf_progress_bars_off():
                save_adapter(self.model, tmp / "adapter")
            torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
            atomic_write_json(tmp / "scheduler.json", self.inputs.scheduler.state_dict())
            save_rng_states(tmp)

        state = {"elapsed_s": self.elapsed_s, "data_rng": self.data_rng.bit_generator.state,
                 "scheduler": self.cfg.scheduler.name, "time": time.time()}
        path = write_checkpoint(self.run, self.step, contents, state)
        self.last_checkpoint_step = self.step
        prune_checkpoints(self.run, self.cfg.run.keep_checkpoints)
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore everything `save_checkpoint` wrote: continue exactly where it stopped."""
        import json

        import torch

        from dumpcli.models import load_adapter_weights

        state = read_trainer_state(path)
        load_adapter_weights(self.model, path / "adapter")
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=self.inputs.loaded.device))
        self.inputs.scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text(encoding="utf-8")))
        load_rng_states(path)
        self.data_rng.bit_generator.state = state["data_rng"]
        self.step, self.elapsed_s, self.last_checkpoint_step = int(state["step"]), float(state["elapsed_s"]), int(state["step"])

    # ------------------------------------------------------------ the loop

    def fit(self) -> None:
        """Train to `grpo.steps`, evaluating and checkpointing on schedule.

        Ctrl-C during a step drops that step (its draws are rolled back), checkpoints the last
        completed one and raises TrainingInterrupted.
        """
        g, r = self.cfg.grpo, self.cfg.run
        try:
            if self.step == 0 and r.eval_at_start:
                self.evaluate()
            elif self._eval_due() and all(e["step"] != self.step for e in self.run.read_evals()):
                self.evaluate()  # a Ctrl-C between the step and its evaluation: catch up on resume
            while self.step < g.steps:
                before, snapshot = self.step, self._snapshot()
                try:
                    self.train_step()
                except KeyboardInterrupt:
                    if self.step == before:  # interrupted before the commit: undo the step's draws
                        self._restore(snapshot)
                    raise
                if self._eval_due():
                    self.evaluate()
                if (r.save_every and self.step % r.save_every == 0) or self.step == g.steps:
                    self.save_checkpoint()
        except KeyboardInterrupt:
            saved = None
            if self.step > 0:
                saved = self.run.checkpoints_dir / f"step-{self.step:06d}"
                if self.last_checkpoint_step != self.step:
                    saved = self.save_checkpoint()
            raise TrainingInterrupted(self.step, saved) from None

    def _eval_due(self) -> bool:
        every = self.cfg.run.eval_every
        return self.step > 0 and ((every > 0 and self.step % every == 0) or self.step == self.cfg.grpo.steps)

    def _snapshot(self) -> dict[str, Any]:
        return {"rng": capture_rng_states(), "data": self.data_rng.bit_generator.state,
                "scheduler": self.inputs.scheduler.state_dict()}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        restore_rng_states(snapshot["rng"])
        self.data_rng.bit_generator.state = snapshot["data"]
        self.inputs.scheduler.load_state_dict(snapshot["scheduler"])
        self.optimizer.zero_grad(set_to_none=True)


# ---------------------------------------------------------------- helpers


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, so a step's state change is all-or-nothing."""
    received: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _rng_untouched() -> Iterator[None]:
    """Evaluation must not shift the training's sampling stream (runs with and without eval agree)."""
    states = capture_rng_states()
    try:
        yield
    finally:
        restore_rng_states(states)


def check_resumable(run: RunDir) -> Path:
    """The newest complete checkpoint of `run`, or a DumpError saying why it cannot be resumed."""
    latest = run.latest_checkpoint()
    if latest is None:
        raise DumpError(f"{run.path} has no complete checkpoint to resume from; start a new run with another --out")
    return latest


def default_run_dir(cfg: TrainConfig) -> str:
    return str(Path("runs") / f"{cfg.scheduler.name}-{time.strftime('%Y%m%d-%H%M%S')}")


def build_trainer(cfg: TrainConfig, *, resume: bool = False) -> Trainer:
    """Validate and load everything, then create the run dir, or reopen it at its newest checkpoint.

    `cfg.run.out` none means runs/<scheduler>-<timestamp>. Nothing is written to the run dir
    unless every check passed and the model loaded.
    """
    import dataclasses

    from dumpcli.runs import create_run_dir, truncate_logs
    from dumpcli.training_setup import load_inputs

    from dumpcli.scheduler import resolve_options

    # config.yaml records every scheduler option, defaults included, so the run can be repeated
    # even if a later version changes a default.
    options = resolve_options(cfg.scheduler.name, cfg.scheduler.options)
    cfg = dataclasses.replace(cfg, scheduler=dataclasses.replace(cfg.scheduler, options=options))
    if cfg.run.out is None:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, out=default_run_dir(cfg)))
    out = Path(str(cfg.run.out))
    run = RunDir(out)
    checkpoint = check_resumable(run) if resume else None
    if not resume and out.exists() and any(out.iterdir()):
        raise DumpError(f"run dir {out} already exists and is not empty; continue it with `dump train --resume {out}` "
                        "or pick another --out")
    inputs = load_inputs(cfg)
    if checkpoint is None:
        return Trainer(inputs, create_run_dir(out, cfg))
    trainer = Trainer(inputs, run)
    trainer.load_checkpoint(checkpoint)
    truncate_logs(run, trainer.step)
    return trainer
