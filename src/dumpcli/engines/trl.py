"""`dump train --engine trl`: TRL's GRPOTrainer, with a dump scheduler choosing every prompt's distribution.

    dump train --engine trl --config examples/configs/ladder-tiny.yaml --out runs/trl
    torchrun --nproc_per_node 2 -m dumpcli train --engine trl ...      # several processes (gloo on CPU)
    accelerate launch --config_file ds.yaml -m dumpcli train --engine trl --set trl.use_vllm=true ...

What dump adds to TRL, in the order a step runs:
- draw: `SchedulerSampler` (engines/trl_sampler.py) replaces TRL's RepeatSampler with the same layout;
- reward: each distribution's registered reward scores prefill + completion (`DumpReward`);
- scheduler update: right after TRL computed the advantages of a round, every rank gathers all
  ranks' completions (distribution, reward, advantage) and updates its scheduler with all of them,
  so the schedulers of all ranks stay equal and draw alike (`DumpGRPOTrainer`, engines/trl_trainer.py);
- log / evaluate / checkpoint: `RunDirCallback` writes the run dir through dumpcli.rundir.RunWriter on
  the main process: the same metrics rows, evaluations, samples and checkpoints as `--engine dump`.
The config maps to trl.GRPOConfig through one table (engines/trl_args.py). docs/engines.md compares both engines.
"""

from __future__ import annotations

import dataclasses
import shutil
import signal
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dumpcli.config import TrainConfig
from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_write_json
from dumpcli.rundir import RunDir, RunWriter, read_trainer_state
from dumpcli.rundir.layout import ADAPTER, SCHEDULER_STATE, TRL_CHECKPOINT, TRL_STAGING
from dumpcli.scheduler import Scheduler, build_scheduler
from dumpcli.train.setup import (TrainingData, check_same_dataset, hf_progress_bars_off, load_training_data, open_run,
                                 seed_everything, set_aside_damaged)
from dumpcli.values import coerce_fields

try:
    from transformers import TrainerCallback
    from trl import GRPOConfig
except ImportError as e:  # the core never needs TRL; this engine does
    raise DumpError(f"--engine trl needs TRL ({e.name} is missing): pip install 'dumpcli[trl]'") from None

import torch
from accelerate import PartialState

from dumpcli.engines.trl_args import grpo_config_kwargs
from dumpcli.engines.trl_sampler import SchedulerSampler
from dumpcli.engines.trl_trainer import DumpGRPOTrainer, DumpReward, Round
from dumpcli.train.grpo import group_advantages
from dumpcli.train.metrics import per_distribution, reward_parts

StepCallback = typing.Callable[[Any, dict[str, Any]], None]


# ---------------------------------------------------------------- the run dir


class RunDirCallback(TrainerCallback):
    """Writes the run dir on the main process: metrics and samples per step, evaluations, checkpoints."""

    def __init__(self, engine: TRLEngine) -> None:
        self.engine, self.logs, self.started = engine, [], None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if state.global_step == 0 and self.engine.cfg.run.eval_at_start:
            self.engine.evaluate()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        step, done = divmod(state.global_step, self.engine.cfg.grpo.num_iterations)
        every = self.engine.cfg.run.save_every
        control.should_save = not done and ((every and step % every == 0) or step == self.engine.cfg.grpo.steps)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kw: Any) -> None:
        if not logs or "loss" not in logs:
            return  # the end-of-training summary
        self.logs.append(logs)
        if state.global_step % self.engine.cfg.grpo.num_iterations:
            return  # a dump step is num_iterations TRL optimizer steps on one generation round
        step_time, self.started = time.perf_counter() - self.started, None
        self.engine.end_step(self.engine.trainer.rounds.popleft(), self.logs, step_time)
        self.logs = []

    def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        self.engine.save_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self.engine.writer is not None:  # TRL's staging dir: only its model card is left in it
            shutil.rmtree(args.output_dir, ignore_errors=True)


@dataclass
class TRLEngine:
    """What `dump train` drives (the engine interface of dumpcli.engines), around a DumpGRPOTrainer."""

    cfg: TrainConfig
    data: TrainingData
    run: RunDir
    writer: RunWriter | None  # None on every process but the main one
    loaded: Any  # dumpcli.policy.LoadedModel: the policy before TRL wrapped it
    checkpoint: Path | None = None  # the checkpoint resumed from
    step: int = 0
    elapsed_s: float = 0.0
    on_step: list[StepCallback] = field(default_factory=list)
    on_eval: list[StepCallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one-liners for `dump train` to show (a checkpoint passed over)
    trainer: DumpGRPOTrainer = field(init=False)

    def close(self) -> None:
        """Release the run dir's lock (the main process holds it; the kernel drops it at exit anyway)."""
        if self.writer is not None:
            self.writer.release()

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def scheduler(self) -> Scheduler:
        return self.trainer.scheduler

    @property
    def is_main_process(self) -> bool:
        return self.trainer.accelerator.is_main_process

    def fit(self) -> None:
        from dumpcli.train.loop import TrainingInterrupted

        resume = str(self.checkpoint / TRL_CHECKPOINT) if self.checkpoint is not None else None
        self.trainer.rng_checkpoint = resume
        try:
            with hf_progress_bars_off():
                self.trainer.train(resume_from_checkpoint=resume)
        except KeyboardInterrupt as e:  # TRL cannot roll back a step: the newest checkpoint is where to resume
            signum = getattr(e, "signum", signal.SIGINT)  # StopRequested (SIGTERM, SIGHUP) carries its signal
            raise TrainingInterrupted(self.step, self.run.latest_checkpoint(), signum) from None

    def end_step(self, rnd: Round, logs: list[dict[str, float]], step_time: float) -> None:
        """Log step `self.step + 1` (every process keeps count; the main one writes)."""
        self.step, self.elapsed_s = self.step + 1, self.elapsed_s + step_time
        if self.writer is not None:
            row = self._metrics_row(rnd, logs, step_time)
            self.writer.append_metrics(row)
            for s in rnd.samples:  # the keys of dumpcli.train.loop.Trainer._log_samples
                self.writer.append_sample({"step": self.step, "id": s["id"], "distribution": self.names[s["distribution"]],
                                           "prefill": s["prefill"], "completion": s["completion"], "answer": s["answer"],
                                           "reward": s["reward"], "correct": s["correct"], "advantage": s["advantage"]})
            for callback in self.on_step:
                callback(self, row)
        every = self.cfg.run.eval_every
        if (every and self.step % every == 0) or self.step == self.cfg.grpo.steps:
            self.evaluate()

    def _metrics_row(self, rnd: Round, logs: list[dict[str, float]], step_time: float) -> dict[str, Any]:
        """The metrics.jsonl row, key for key as dumpcli.train.loop.Trainer._metrics_row (docs/formats.md).

        Rewards, group statistics, lengths and the per-distribution block are computed here from the
        gathered round; loss, KL, clip ratio, grad norm and learning rate are TRL's (mean over
        num_iterations optimizer steps); generation_time_s is TRL's whole generate-and-score call.
        """
        g = self.cfg.grpo
        group_std = group_advantages(torch.tensor(rnd.rewards), g.num_generations)[1].numpy()  # [B]

        def trl(key: str) -> float | None:
            values = [log[key] for log in logs if log.get(key) is not None]
            return float(np.mean(values)) if values else None

        row: dict[str, Any] = {
            "step": self.step, "time": time.time(), "elapsed_s": round(self.elapsed_s, 3),
            "loss": trl("loss"), "reward": float(rnd.rewards.mean()), "reward_std": float(group_std.mean()),
            "frac_reward_zero_std": float((group_std < 1e-6).mean()),
            "kl": trl("kl") if g.beta > 0 else None, "clip_ratio": trl("clip_ratio/region_mean"),
            "grad_norm": trl("grad_norm"), "learning_rate": trl("learning_rate"),
            "completions/mean_length": float(rnd.lengths.mean()),
            "completions/clipped_ratio": float((~rnd.ended).mean()),
            "tokens_per_second": float(rnd.lengths.sum()) / step_time, "step_time_s": round(step_time, 4),
            "generation_time_s": round(rnd.generation_time_s, 4), **reward_parts(rnd.results), "scheduler": self.cfg.scheduler.name,
        }
        row["distributions"] = per_distribution(self.names, np.array(rnd.draw.probabilities), np.array(rnd.draw.slots),
                                                rnd.distribution, rnd.rewards, rnd.learnability, group_std <= 0)
        return row

    def evaluate(self) -> None:
        """Greedy evaluation on the main process (the others wait), appended to eval.jsonl."""
        from dumpcli.train.evaluate import Sampling, evaluate
        from dumpcli.train.rng import rng_untouched

        accelerator, g = self.trainer.accelerator, self.cfg.grpo
        if self.writer is not None:
            loaded = dataclasses.replace(self.loaded, model=accelerator.unwrap_model(self.trainer.model))
            sampling = Sampling(self.cfg.run.eval_samples, g.temperature, g.top_p)
            with torch.no_grad(), rng_untouched():
                result = evaluate(loaded, self.data.eval_sets(), g.max_new_tokens, self.cfg.run.eval_batch_size,
                                  sampling=sampling)
            row = {"step": self.step, "time": time.time(), **result}
            self.writer.append_eval(row)
            for callback in self.on_eval:
                callback(self, row)
        accelerator.wait_for_everyone()

    def save_checkpoint(self, trl_checkpoint: Path) -> None:
        """checkpoints/step-N: TRL's checkpoint moved in as trl/, plus the adapter, scheduler and sampler state."""
        from dumpcli.policy import save_adapter

        accelerator = self.trainer.accelerator
        accelerator.wait_for_everyone()  # every rank has written its RNG state into TRL's checkpoint
        if self.writer is not None:
            def contents(tmp: Path) -> None:
                shutil.move(str(trl_checkpoint), tmp / TRL_CHECKPOINT)
                with hf_progress_bars_off():
                    save_adapter(accelerator.unwrap_model(self.trainer.model), tmp / ADAPTER)
                atomic_write_json(tmp / SCHEDULER_STATE, self.scheduler.state_dict())

            state = {"engine": "trl", "elapsed_s": self.elapsed_s, "sampler": self.trainer.dump_sampler.state_dict(),
                     "scheduler": self.cfg.scheduler.name, "time": time.time()}
            self.writer.write_checkpoint(self.step, contents, state)
            self.writer.prune_checkpoints(self.cfg.run.keep_checkpoints)
        accelerator.wait_for_everyone()


# ---------------------------------------------------------------- building it


def build_trl_trainer(cfg: TrainConfig, *, resume: bool = False) -> TRLEngine:
    """Validate, load data, scheduler and model, then create (main process) or reopen the run dir."""
    # torchrun / accelerate launch: the process group, from the environment; on CPU accelerate
    # forms one (gloo) only when asked for the CPU explicitly.
    state = PartialState(cpu=cfg.model.device == "cpu" or not torch.cuda.is_available())
    main = state.is_main_process
    cfg, run, lock = open_run(cfg, resume=resume, main=main)
    try:
        return _build(cfg, run, lock, state, resume)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _build(cfg: TrainConfig, run: RunDir, lock: Any, state: Any, resume: bool) -> TRLEngine:
    from dumpcli.policy import load_policy, render_prompts
    from dumpcli.policy.generation import eos_token_ids

    main = state.is_main_process
    checkpoint, notes = None, []
    if resume:  # the main process sets damaged checkpoints aside before the others look
        with state.main_process_first():
            checkpoint, notes = set_aside_damaged(run, RunWriter(run, lock) if main else None)
    staging = run.checkpoints_dir / TRL_STAGING
    args = _grpo_config(cfg, state.num_processes, str(staging))
    data = load_training_data(cfg.data)
    if resume:
        check_same_dataset(run, data.record)
    scheduler = build_scheduler(cfg.scheduler.name, data.distributions, cfg.run.seed, cfg.scheduler.options)
    seed_everything(cfg.run)
    with hf_progress_bars_off():
        loaded = load_policy(cfg.model, cfg.run.seed)
    sizes = [len(rows) for rows in data.train_rows]
    g = cfg.grpo
    sampler = SchedulerSampler(scheduler, [int(x) for x in np.cumsum([0, *sizes[:-1]])], sizes, g.batch_size,
                               g.num_generations, g.num_iterations * args.steps_per_generation, g.steps, cfg.run.seed)
    engine = TRLEngine(cfg, data, run, None, loaded, checkpoint, notes=notes)
    if checkpoint is not None:
        saved = read_trainer_state(checkpoint)
        if saved.get("engine") != "trl":
            raise DumpError(f"{checkpoint} was not written by --engine trl; resume it with the engine that wrote it")
        scheduler.load_state_dict(_read_json(checkpoint / SCHEDULER_STATE))
        sampler.load_state_dict(saved["sampler"])
        engine.step, engine.elapsed_s = int(saved["step"]), float(saved["elapsed_s"])
    reward = DumpReward(data)
    try:
        with hf_progress_bars_off():
            engine.trainer = DumpGRPOTrainer(
                model=loaded.model, args=args, train_dataset=_dataset(data, loaded.tokenizer, render_prompts),
                processing_class=loaded.tokenizer, callbacks=[RunDirCallback(engine)], dump_sampler=sampler,
                dump_reward=reward, eos_ids=eos_token_ids(loaded), samples_per_step=cfg.run.samples_per_step,
                learn_from_trl=g.scale_rewards)
    finally:  # the trainer makes its output dir; a new run dir is created below, whole, or not at all
        if not resume and main:
            _remove_empty(staging, run.checkpoints_dir, run.path)
    _quiet(engine.trainer)
    if main:
        engine.writer = (RunWriter.reopen(run, engine.step if checkpoint is not None else None, lock) if resume
                         else RunWriter.create(run.path, cfg, data.record))
    state.wait_for_everyone()
    return engine


def _grpo_config(cfg: TrainConfig, world: int, output_dir: str) -> GRPOConfig:
    kwargs = grpo_config_kwargs(cfg, world, output_dir)
    known = {f.name: f for f in dataclasses.fields(GRPOConfig)}
    if "activation_checkpointing" in known:  # transformers >= 5.x's name; gradient_checkpointing warns
        kwargs["activation_checkpointing"] = kwargs.pop("gradient_checkpointing")
    if not torch.cuda.is_available():  # model.device auto = the CPU here
        kwargs.update(use_cpu=True, dataloader_pin_memory=False)  # nothing to pin to; torch warns otherwise
    kwargs.update(coerce_fields(
        GRPOConfig, cfg.trl.args,
        unknown=lambda key, _: f"trl.args.{key} is not a trl.GRPOConfig field (TRL {_trl_version()}); "
                               "see `python -c 'import trl; help(trl.GRPOConfig)'`",
        invalid=lambda key, value, kind: f"trl.args.{key} must be {kind}, got {value!r}",
    ))
    try:
        return GRPOConfig(**kwargs)
    except ValueError as e:  # TRL's own checks (vLLM without vllm installed, ...): its message, one line
        raise DumpError(f"TRL refused the config: {str(e).splitlines()[0]}") from None


def _dataset(data: TrainingData, tokenizer: Any, render_prompts: Any) -> Any:
    """Every distribution's train rows, distribution after distribution (the sampler's offsets), as TRL text prompts."""
    from datasets import Dataset

    rows = [(j, r) for j, rows in enumerate(data.train_rows) for r in rows]
    texts = render_prompts(tokenizer, [r["prompt"] for _, r in rows], [r["prefill"] for _, r in rows])
    return Dataset.from_dict({"prompt": texts, "prefill": [r["prefill"] for _, r in rows],
                              "answer": [r["answer"] for _, r in rows], "distribution": [j for j, _ in rows],
                              "id": [r["id"] for _, r in rows]})


def _quiet(trainer: Any) -> None:
    """transformers prints every log dict to stdout when its progress bar is off; dump's display reports instead."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)


def _remove_empty(*folders: Path) -> None:
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # missing or not empty
            return


def _read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text(encoding="utf-8"))


def _trl_version() -> str:
    import trl

    return trl.__version__
