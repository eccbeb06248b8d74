"""The GRPO trainer: one step reads top to bottom as it runs.

    draw -> generate -> reward -> advantage -> loss -> update -> scheduler update -> log

    from dumpcli.train.setup import build_trainer
    trainer = build_trainer(cfg)            # validates everything, then creates the run dir
    summary = trainer.fit()                  # or trainer.train_step() one step at a time

Everything random is seeded from `run.seed` and checkpointed (torch / numpy / python RNGs, the
trainer's own prompt RNG, the scheduler's state), so `--resume` continues the exact same run.
The batch of one step is a `StepBatch` (dumpcli.train.batch); the math is in dumpcli.train.grpo.
"""

from __future__ import annotations

import functools
import json
import math
import pickle
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.config import GRPOConfig, TrainConfig
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_write_json, torch_save
from dumpcli.rundir import RunWriter, read_trainer_state
from dumpcli.rundir.layout import ADAPTER, OPTIMIZER, SCHEDULER_STATE
from dumpcli.scheduler import Scheduler
from dumpcli.train.batch import StepBatch
from dumpcli.train.evaluate import Sampling, evaluate
from dumpcli.train.grpo import BatchSize, group_advantages, grpo_loss
from dumpcli.train.metrics import per_distribution, reward_parts
from dumpcli.train.rng import capture_rng_states, load_rng_states, restore_rng_states, rng_untouched, save_rng_states
from dumpcli.train.setup import TrainingData, hf_progress_bars_off
from dumpcli.train.signals import SignalExit, StopRequested, deferred, shielded, stop_signals

StepCallback = Callable[["Trainer", dict[str, Any]], None]


class TrainingInterrupted(SignalExit, Exception):
    """A stop signal: the last completed step was checkpointed; `checkpoint` is where (None at step 0).

    `exit_code` is 128 + the signal: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP.
    """

    def __init__(self, step: int, checkpoint: Path | None, signum: int = signal.SIGINT) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step, self.checkpoint, self.signum = step, checkpoint, signum


class NonFiniteLoss(Exception):
    """The loss or gradient of step `step` is NaN or infinite; the update was not applied."""

    def __init__(self, step: int, what: str, totals: dict[str, float]) -> None:
        super().__init__(f"step {step}: {what}")
        self.step, self.what, self.totals = step, what, totals


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
    cfg: TrainConfig
    data: TrainingData
    scheduler: Scheduler
    loaded: Any  # dumpcli.policy.LoadedModel
    writer: RunWriter
    step: int = 0
    elapsed_s: float = 0.0
    last_checkpoint_step: int = -1
    on_step: list[StepCallback] = field(default_factory=list)
    on_eval: list[StepCallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the user: e.g. a damaged checkpoint passed over on resume

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
        from dumpcli.policy.generation import eos_token_ids

        self.eos_ids = torch.tensor(eos_token_ids(self.loaded), device=self.loaded.device)

    @property
    def model(self) -> Any:
        return self.loaded.model

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def run(self) -> Any:
        """The run dir (dumpcli.rundir.RunDir) this trainer writes."""
        return self.writer.run

    def close(self) -> None:
        """Release the run dir's lock (also released when the process ends, however it ends)."""
        self.writer.release()
    @property
    def is_main_process(self) -> bool:
        """One process, always the one that reports (the engine interface, dumpcli.engines)."""
        return True

    # ------------------------------------------------------------ the step

    def train_step(self) -> dict[str, Any]:
        """One optimizer step on one freshly drawn batch; returns (and logs) its metrics row."""
        g, started, step = self.cfg.grpo, time.perf_counter(), self.step + 1
        probabilities = self.scheduler.probabilities()  # [K]
        # Draw -> generate -> reward -> advantage, for the whole batch
        drawn = self._draw_and_score(g.batch_size, probabilities)
        rounds = [drawn]
        if g.filter_zero_std_groups:  # DAPO's dynamic sampling: refill the groups that carry no signal
            rounds = self._refill_rounds(drawn, probabilities)
            drawn = StepBatch.concat(rounds, self._pad_id) if len(rounds) > 1 else drawn
        batch = self._groups_to_train(rounds) if g.filter_zero_std_groups else drawn
        # Loss + update. From here on the step changes the model: a stop signal waits until the step is done.
        lr = learning_rate(g, step)
        with deferred():
            try:
                update = self._policy_update(batch, lr)
            except NonFiniteLoss as e:  # logged (as null), never applied: fit() stops at the last good step
                row = self._metrics_row(drawn, e.totals, lr, time.perf_counter() - started, len(rounds))
                self.writer.append_metrics({**row, "step": step})
                raise
            # Scheduler update: every completion drawn this step, as flat arrays
            self.scheduler.update(drawn.distribution_of, drawn.learnability.numpy().astype(np.float64),
                                  drawn.rewards.numpy().astype(np.float64))
            step_time = time.perf_counter() - started
            self.step, self.elapsed_s = step, self.elapsed_s + step_time
            metrics = self._metrics_row(drawn, update, lr, step_time, len(rounds))
            self.writer.append_metrics(metrics)
            self._log_samples(drawn)
        for callback in self.on_step:
            callback(self, metrics)
        return metrics

    def _draw_and_score(self, num_prompts: int, probabilities: np.ndarray) -> StepBatch:
        """Draw `num_prompts` prompts through the scheduler, sample G completions each, reward them."""
        import torch

        from dumpcli.policy import generate, render_prompts

        g = self.cfg.grpo
        # Draw: a distribution per prompt slot from the scheduler, a prompt uniformly within it
        slots = self.scheduler.draw(num_prompts)  # [B]
        batch = StepBatch(slots, [self._pick_prompt(int(j)) for j in slots], g.num_generations, probabilities)
        # Generate: G completions per prompt, grouped per prompt
        texts = render_prompts(self.loaded.tokenizer, [r["prompt"] for r in batch.rows], [r["prefill"] for r in batch.rows])
        self.model.eval()
        generation_started = time.perf_counter()
        with torch.no_grad():
            batch.rollout = generate(self.loaded, texts, g.num_generations, g.max_new_tokens,
                                     temperature=g.temperature, top_p=g.top_p)
        batch.generation_time_s = time.perf_counter() - generation_started
        # Reward: each distribution's own reward function scores prefill + completion
        rewards = [self.data.rewards[int(j)] for j in batch.distribution_of]  # [N]
        batch.results = [reward(row["prefill"] + text, row["answer"]) for reward, row, text
                         in zip(rewards, batch.completion_rows(), batch.rollout.texts)]
        batch.rewards = torch.tensor([r.reward for r in batch.results], dtype=torch.float32)  # [N]
        # Advantage: group-normalised, one scalar per completion
        batch.advantages, batch.group_std = group_advantages(batch.rewards, g.num_generations, g.scale_rewards,
                                                             g.advantage_eps)  # [N], [B]
        # The scheduler's learnability signal is the normalised advantage (docs/algorithm.md) even
        # when the loss uses unscaled ones (Dr. GRPO): the reward's scale must not decide the curriculum.
        batch.learnability = batch.advantages if g.scale_rewards else group_advantages(
            batch.rewards, g.num_generations, True, g.advantage_eps)[0]  # [N]
        return batch

    def _refill_rounds(self, first: StepBatch, probabilities: np.ndarray) -> list[StepBatch]:
        """Draw again, as many prompts as groups still lack signal, until the batch is full or the rounds run out."""
        g, rounds = self.cfg.grpo, [first]
        missing = g.batch_size - int(first.has_signal().sum())
        while missing > 0 and len(rounds) < g.max_generation_rounds:
            rounds.append(self._draw_and_score(missing, probabilities))
            missing -= int(rounds[-1].has_signal().sum())
        return rounds

    def _groups_to_train(self, rounds: list[StepBatch]) -> StepBatch:
        """batch_size groups: every group with signal, in draw order, topped up with groups without."""
        g = self.cfg.grpo
        with_signal = [b.select(np.flatnonzero(b.has_signal())) for b in rounds]
        without = [b.select(np.flatnonzero(~b.has_signal())) for b in rounds]
        pool = StepBatch.concat(with_signal + without, self._pad_id)
        return pool.select(np.arange(g.batch_size))

    @property
    def _pad_id(self) -> int:
        return int(self.loaded.tokenizer.pad_token_id)

    def _pick_prompt(self, dist: int) -> dict[str, Any]:
        pool = self.data.train_rows[dist]
        return pool[int(self.data_rng.integers(len(pool)))]

    def _policy_update(self, batch: StepBatch, lr: float) -> dict[str, float]:
        """num_iterations PPO updates on the batch, in micro-batches: every optimizer step of a step is here."""
        import torch

        from dumpcli.policy import per_token_logprobs, reference_adapter_disabled

        g, model, rollout = self.cfg.grpo, self.model, batch.rollout
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = batch.num_completions
        micro = g.micro_batch_size or n
        size = BatchSize(rows=n, tokens=float(rollout.completion_mask.sum()), max_new_tokens=g.max_new_tokens)
        tensors = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
        advantages = batch.advantages.to(self.loaded.device)  # [N]
        # Log-probs of the tempered softmax the completions were sampled from (as TRL).
        logprobs = functools.partial(per_token_logprobs, model, temperature=g.temperature)
        with torch.no_grad():
            # On-policy (num_iterations 1) the old log-probs are the current ones, detached: ratio 1.
            old = logprobs(*tensors) if g.num_iterations > 1 else None  # [N, C]
            ref = None
            if g.beta > 0:
                with reference_adapter_disabled(model):
                    ref = logprobs(*tensors)  # [N, C]
        model.train()
        totals = {"loss": 0.0, "tokens": 0.0, "kl_sum": 0.0, "clip_low_sum": 0.0, "clip_high_sum": 0.0, "grad_norm": 0.0}
        for _ in range(g.num_iterations):
            self.optimizer.zero_grad(set_to_none=True)
            for start in range(0, n, micro):
                part = slice(start, start + micro)
                logps = logprobs(*(t[part] for t in tensors))  # [n, C]
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
            if not (math.isfinite(totals["loss"]) and math.isfinite(float(norm))):
                self.optimizer.zero_grad(set_to_none=True)  # one NaN gradient would poison every weight
                what = "the loss" if not math.isfinite(totals["loss"]) else "the gradient norm"
                raise NonFiniteLoss(self.step + 1, f"{what} is {totals['loss'] if what == 'the loss' else float(norm)}", totals)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return totals

    # ------------------------------------------------------------ logging

    def _metrics_row(self, batch: StepBatch, update: dict[str, float], lr: float, step_time: float,
                     rounds: int) -> dict[str, Any]:
        """The metrics.jsonl row: `batch` is every group drawn this step (all generation rounds)."""
        import torch

        g, rollout = self.cfg.grpo, batch.rollout
        mask = rollout.completion_mask
        lengths = mask.sum(dim=1).float()  # [N]
        ended = (torch.isin(rollout.completion_ids, self.eos_ids) & mask.bool()).any(dim=1)  # [N] stopped at EOS
        rew, adv = batch.rewards.numpy(), batch.learnability.detach().cpu().numpy()  # [N]
        no_signal = ~batch.has_signal()  # [B]
        tokens = max(update["tokens"], 1.0)
        row: dict[str, Any] = {
            "step": self.step, "time": time.time(), "elapsed_s": round(self.elapsed_s, 3),
            "loss": update["loss"], "reward": float(rew.mean()), "reward_std": float(batch.group_std.mean()),
            "frac_reward_zero_std": float((batch.group_std < 1e-6).float().mean()),
            "kl": update["kl_sum"] / tokens if g.beta > 0 else None,
            "clip_ratio": (update["clip_low_sum"] + update["clip_high_sum"]) / tokens,
            "grad_norm": update["grad_norm"], "learning_rate": lr,
            "completions/mean_length": float(lengths.mean()),
            "completions/clipped_ratio": float((~ended).float().mean()),
            "tokens_per_second": float(lengths.sum()) / step_time, "step_time_s": round(step_time, 4),
            "generation_time_s": round(batch.generation_time_s, 4),
        }
        if g.filter_zero_std_groups:
            row["dynamic_sampling/rounds"] = rounds
            row["dynamic_sampling/groups_drawn"] = batch.num_prompts
        row.update(reward_parts(batch.results))
        row["scheduler"] = self.cfg.scheduler.name
        row["distributions"] = per_distribution(self.names, batch.probabilities, batch.slots, batch.distribution_of,
                                                rew, adv, no_signal)
        return row

    def _log_samples(self, batch: StepBatch) -> None:
        # The first completion of the first few prompts: bounded, and no RNG is spent choosing.
        for slot in range(min(self.cfg.run.samples_per_step, batch.num_prompts)):
            i, row = batch.group_start(slot), batch.rows[slot]
            self.writer.append_sample({
                "step": self.step, "id": row["id"], "distribution": row["distribution"], "prefill": row["prefill"],
                "completion": batch.rollout.texts[i], "answer": row["answer"], "reward": batch.results[i].reward,
                "correct": batch.results[i].correct, "advantage": float(batch.advantages[i]),
            })

    # ------------------------------------------------------------ evaluation and checkpoints

    def evaluate(self) -> dict[str, Any]:
        """Greedy evaluation on each distribution's test rows; appended to eval.jsonl."""
        import torch

        self.model.eval()
        with torch.no_grad(), rng_untouched():
            sampling = Sampling(self.cfg.run.eval_samples, self.cfg.grpo.temperature, self.cfg.grpo.top_p)
            result = evaluate(self.loaded, self.data.eval_sets(), self.cfg.grpo.max_new_tokens, self.cfg.run.eval_batch_size,
                              sampling=sampling)
        row = {"step": self.step, "time": time.time(), **result}
        self.writer.append_eval(row)
        for callback in self.on_eval:
            callback(self, row)
        return row

    def save_checkpoint(self) -> Path:
        """checkpoints/step-N/ with adapter, optimizer, scheduler, RNG states; atomic."""
        from dumpcli.policy import save_adapter

        def contents(tmp: Path) -> None:
            with hf_progress_bars_off():
                save_adapter(self.model, tmp / ADAPTER)
            torch_save(self.optimizer.state_dict(), tmp / OPTIMIZER)
            atomic_write_json(tmp / SCHEDULER_STATE, self.scheduler.state_dict())
            save_rng_states(tmp)

        state = {"elapsed_s": self.elapsed_s, "data_rng": self.data_rng.bit_generator.state,
                 "scheduler": self.cfg.scheduler.name, "time": time.time()}
        path = self.writer.write_checkpoint(self.step, contents, state)
        self.last_checkpoint_step = self.step
        self.writer.prune_checkpoints(self.cfg.run.keep_checkpoints)
        return path

    def load_checkpoint(self, path: Path) -> None:
        """Restore everything `save_checkpoint` wrote: continue exactly where it stopped."""
        import torch

        from dumpcli.policy import load_adapter_weights

        state = read_trainer_state(path)
        load_adapter_weights(self.model, path / ADAPTER)
        try:
            self.optimizer.load_state_dict(torch.load(path / OPTIMIZER, map_location=self.loaded.device))
            self.scheduler.load_state_dict(json.loads((path / SCHEDULER_STATE).read_text(encoding="utf-8")))
            load_rng_states(path)
            self.data_rng.bit_generator.state = state["data_rng"]
            self.step, self.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        except (OSError, EOFError, KeyError, TypeError, ValueError, RuntimeError, pickle.UnpicklingError) as e:
            raise DumpError(f"checkpoint {path} does not fit this run ({type(e).__name__}: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else 'unreadable'})") from None
        self.last_checkpoint_step = self.step

    # ------------------------------------------------------------ the loop

    def fit(self) -> None:
        """Train to `grpo.steps`, evaluating and checkpointing on schedule.

        A stop signal (Ctrl-C, SIGTERM, SIGHUP) during a step drops that step (its draws are
        rolled back), checkpoints the last completed one and raises TrainingInterrupted. A NaN or
        infinite loss is logged as null, not applied, and stops the run the same way, as a DumpError.
        """
        g, r = self.cfg.grpo, self.cfg.run
        with stop_signals():
            try:
                if self.step == 0 and r.eval_at_start and not self.run.read_evals():
                    self.evaluate()
                elif self._eval_due() and all(e["step"] != self.step for e in self.run.read_evals()):
                    self.evaluate()  # a stop between the step and its evaluation: catch up on resume
                while self.step < g.steps:
                    before, snapshot = self.step, self._snapshot()
                    try:
                        self.train_step()
                    except (KeyboardInterrupt, NonFiniteLoss):
                        if self.step == before:  # stopped before the commit: undo the step's draws
                            self._restore(snapshot)
                        raise
                    if self._eval_due():
                        self.evaluate()
                    if (r.save_every and self.step % r.save_every == 0) or self.step == g.steps:
                        self.save_checkpoint()
            except NonFiniteLoss as e:
                with shielded():
                    saved = self._checkpoint_last_step()
                where = f"checkpoint {saved}" if saved else "no step finished"
                raise DumpError(f"step {e.step}: {e.what}; the run stopped without applying it ({where}); "
                                "check the reward and try a lower --lr in a new run") from None
            except KeyboardInterrupt as e:
                with shielded():  # a second Ctrl-C must not cut this checkpoint short
                    saved = self._checkpoint_last_step()
                raise TrainingInterrupted(self.step, saved, e.signum if isinstance(e, StopRequested) else signal.SIGINT) from None

    def _checkpoint_last_step(self) -> Path | None:
        """The checkpoint of the last completed step, written now unless it exists (None at step 0)."""
        if self.step == 0:
            return None
        if self.last_checkpoint_step != self.step:
            return self.save_checkpoint()
        return self.run.checkpoint_dir(self.step)

    def _eval_due(self) -> bool:
        every = self.cfg.run.eval_every
        return self.step > 0 and ((every > 0 and self.step % every == 0) or self.step == self.cfg.grpo.steps)

    def _snapshot(self) -> dict[str, Any]:
        return {"rng": capture_rng_states(), "data": self.data_rng.bit_generator.state,
                "scheduler": self.scheduler.state_dict()}

    def _restore(self, snapshot: dict[str, Any]) -> None:
        restore_rng_states(snapshot["rng"])
        self.data_rng.bit_generator.state = snapshot["data"]
        self.scheduler.load_state_dict(snapshot["scheduler"])
        self.optimizer.zero_grad(set_to_none=True)
