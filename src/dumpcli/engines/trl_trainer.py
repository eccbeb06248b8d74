"""The GRPOTrainer subclass of `--engine trl`: prompts from a dump scheduler, updated after every round.

    trainer = DumpGRPOTrainer(model=..., args=GRPOConfig(...), train_dataset=..., processing_class=tokenizer,
                              dump_sampler=SchedulerSampler(...), dump_reward=DumpReward(data), ...)

Two overrides of TRL's GRPOTrainer: `_get_train_sampler` returns the scheduler's sampler
(dumpcli.engines.trl_sampler), and `_generate_and_score_completions` calls TRL's, then gathers
every rank's completions (distribution, reward, the advantage TRL computed) and updates the
scheduler of every rank with all of them. Each round is kept as a `Round` for the run-dir writer
(dumpcli.engines.trl).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object
from trl import GRPOTrainer

from dumpcli.engines.trl_sampler import Draw, SchedulerSampler
from dumpcli.scheduler import Scheduler
from dumpcli.train.grpo import group_advantages
from dumpcli.train.setup import TrainingData


@dataclass
class Round:
    """One generation round, gathered from every rank, in the global completion order."""

    draw: Draw
    distribution: np.ndarray  # int64 [N]
    rewards: np.ndarray  # float64 [N]
    advantages: np.ndarray  # float64 [N]: what TRL's loss uses
    learnability: np.ndarray  # float64 [N]: the normalised advantages the scheduler was updated with
    lengths: np.ndarray  # [N] completion tokens
    ended: np.ndarray  # bool [N] stopped at EOS
    results: list[Any]  # [N] RewardResult
    samples: list[dict[str, Any]]  # the first completion of the first run.samples_per_step prompts
    generation_time_s: float  # TRL's _generate_and_score_completions on this process (rewards, old/ref log-probs included)


class DumpReward:
    """TRL reward function: each completion scored by its distribution's dump reward (prefill + completion)."""

    __name__ = "dump_reward"  # TRL logs rewards/<name>/mean

    def __init__(self, data: TrainingData) -> None:
        self.data, self.results = data, []

    def __call__(self, completions: list[str], prefill: list[str], answer: list[str], distribution: list[int],
                 **_: Any) -> list[float]:
        self.results = [self.data.rewards[j](p + c, a) for c, p, a, j in zip(completions, prefill, answer, distribution)]
        return [r.reward for r in self.results]


class DumpGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose prompts come from a dump scheduler, updated after every generation round."""

    def __init__(self, *args: Any, dump_sampler: SchedulerSampler, dump_reward: DumpReward, eos_ids: list[int],
                 samples_per_step: int, learn_from_trl: bool, **kwargs: Any) -> None:
        super().__init__(*args, reward_funcs=[dump_reward], **kwargs)
        self.dump_sampler, self.dump_reward, self.samples_per_step = dump_sampler, dump_reward, samples_per_step
        self.eos_ids = torch.tensor(eos_ids)
        self.learn_from_trl = learn_from_trl  # TRL's advantages are the normalised ones (scale_rewards group)
        self.rounds: deque[Round] = deque()  # generated, not yet logged
        self.rng_checkpoint: str | None = None  # set on resume: RNG states to restore before the first generation

    @property
    def scheduler(self) -> Scheduler:
        return self.dump_sampler.scheduler

    def _get_train_sampler(self, dataset: Any = None) -> SchedulerSampler:
        return self.dump_sampler

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        if not self.model.training:  # TRL's own evaluation loop (dump evaluates in RunDirCallback)
            return super()._generate_and_score_completions(inputs)
        if self.rng_checkpoint is not None:
            # Sampling continues from the RNG states saved with the checkpoint, whatever the loader drew meanwhile.
            self._load_rng_state(self.rng_checkpoint)
            self.rng_checkpoint = None
        draw, started = self.dump_sampler.take(), time.perf_counter()
        output = super()._generate_and_score_completions(inputs)
        everything = gather_object(self._local_records(inputs, output))  # every rank's completions, in rank order
        rnd = self._round(draw, everything, time.perf_counter() - started)
        # Scheduler update: all ranks, all completions, so every rank's scheduler stays the same
        self.scheduler.update(rnd.distribution, rnd.learnability, rnd.rewards)
        self.dump_sampler.updates += 1
        self.rounds.append(rnd)
        return output

    def _local_records(self, inputs: list[dict[str, Any]], output: dict[str, Any]) -> list[dict[str, Any]]:
        mask = output["completion_mask"]  # [n, C]
        ended = (torch.isin(output["completion_ids"], self.eos_ids.to(mask.device)) & mask.bool()).any(dim=1)  # [n]
        first, g = self.accelerator.process_index * len(inputs), self.num_generations  # this rank's first completion
        records = []
        for i, (x, result, adv, length, stop) in enumerate(zip(inputs, self.dump_reward.results, output["advantages"].tolist(),
                                                                 mask.sum(1).tolist(), ended.tolist())):
            sample = None
            if (first + i) % g == 0 and (first + i) // g < self.samples_per_step:  # samples.jsonl, as --engine dump
                text = self.processing_class.decode(output["completion_ids"][i][:length], skip_special_tokens=True)
                sample = {"id": x["id"], "prefill": x["prefill"], "answer": x["answer"], "completion": text}
            records.append({"distribution": int(x["distribution"]), "result": result, "advantage": adv, "length": length,
                            "ended": stop, "sample": sample})
        return records

    def _round(self, draw: Draw, records: list[dict[str, Any]], generation_time_s: float) -> Round:
        distribution = np.array([r["distribution"] for r in records], dtype=np.int64)  # [N]
        if not np.array_equal(distribution, np.repeat(draw.slots, self.num_generations)):
            raise RuntimeError(f"TRL trained on distributions {distribution.tolist()} but the scheduler drew {draw.slots} "
                               "(each repeated num_generations times): has TRL's sampler layout changed?")
        rewards = np.array([r["result"].reward for r in records], dtype=np.float64)  # [N]
        advantages = np.array([r["advantage"] for r in records], dtype=np.float64)  # [N]
        learnability = advantages if self.learn_from_trl else group_advantages(
            torch.tensor(rewards, dtype=torch.float32), self.num_generations)[0].double().numpy()  # [N]
        samples = [{**r["sample"], "distribution": r["distribution"], "reward": r["result"].reward,
                    "correct": r["result"].correct, "advantage": r["advantage"]} for r in records if r["sample"] is not None]
        return Round(draw, distribution, rewards, advantages, learnability, np.array([r["length"] for r in records]),
                     np.array([r["ended"] for r in records]), [r["result"] for r in records], samples, generation_time_s)
