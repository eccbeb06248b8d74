"""The sampler that lets a dump scheduler decide every prompt TRL's GRPOTrainer trains on.

TRL's `RepeatSampler` yields, per generation round, B distinct prompt indices, each repeated G
times in a row (the group), and the whole round `repeat_count` times (= num_iterations x
steps_per_generation: TRL takes the round from its buffer on the repeats). `SchedulerSampler`
keeps that layout exactly; only the B indices come from a scheduler draw, made lazily when the
data loader asks for the round's first index, and a prompt uniformly within each drawn
distribution (the trainer's own RNG, as `--engine dump` does).

Every process iterates the same sampler and accelerate hands each one its slice, so with equal
scheduler states (dumpcli.engines.trl updates every rank with the gathered advantages) every
rank draws the same rounds.

accelerate's DataLoaderShard iterates one batch ahead, so with num_iterations 1 (a round is one
optimizer step, whose batches transformers fetches before it starts) round t+1 is drawn before
round t's update: a lag of one round behind `--engine dump`. With num_iterations >= 2 the look-ahead
falls on a repeat of the same round and the draw sees every update: lag 0. Both are measured in
tests/test_trl_engine.py (docs/engines.md).
Draws made but not yet trained are `pending`; a checkpoint keeps them, and a resumed sampler
yields them again before drawing anew, so a resumed run draws exactly what the uninterrupted one did.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from dumpcli.scheduler import Scheduler


@dataclass
class Draw:
    """One generation round as drawn: what the metrics row reports and the trainer checks."""

    round: int  # 1-based generation round (dump's step)
    probabilities: list[float]  # [K] the scheduler's probabilities at the draw
    slots: list[int]  # [B] distribution index of each prompt slot
    rows: list[int]  # [B] index of each slot's prompt in the flat training dataset
    updates_seen: int  # scheduler updates made before the draw; round - 1 - updates_seen is the lag


class SchedulerSampler(Sampler[int]):
    def __init__(self, scheduler: Scheduler, offsets: list[int], sizes: list[int], prompts_per_round: int,
                 num_generations: int, repeat_count: int, rounds: int, seed: int) -> None:
        self.scheduler = scheduler
        self.offsets, self.sizes = offsets, sizes  # distribution j's rows are offsets[j] .. offsets[j] + sizes[j] - 1
        self.prompts_per_round, self.num_generations, self.repeat_count = prompts_per_round, num_generations, repeat_count
        self.rounds = rounds  # rounds in the whole run (grpo.steps)
        self.data_rng = np.random.default_rng([seed, 0xDA7A])  # the prompt within a distribution, as --engine dump
        self.drawn = 0  # rounds drawn so far, over resumes
        self.updates = 0  # scheduler updates so far (the trainer counts them here)
        self.pending: deque[Draw] = deque()  # drawn, not yet trained: the trainer takes them in order
        self.replay: deque[Draw] = deque()  # after a resume: the checkpoint's pending draws, yielded first
        self.history: list[Draw] = []  # every draw of this process, for tests and diagnostics

    def __iter__(self) -> Iterator[int]:
        while self.replay or self.drawn < self.rounds:
            draw = self.replay.popleft() if self.replay else self._draw()
            self.pending.append(draw)
            for _ in range(self.repeat_count):
                for row in draw.rows:
                    yield from [row] * self.num_generations

    def __len__(self) -> int:
        return self.rounds * self.prompts_per_round * self.num_generations * self.repeat_count

    def _draw(self) -> Draw:
        probabilities = self.scheduler.probabilities()  # [K]
        slots = self.scheduler.draw(self.prompts_per_round)  # [B]
        rows = [self.offsets[j] + int(self.data_rng.integers(self.sizes[j])) for j in slots]
        self.drawn += 1
        draw = Draw(self.drawn, probabilities.tolist(), slots.tolist(), rows, self.updates)
        self.history.append(draw)
        return draw

    def take(self) -> Draw:
        """The oldest draw not yet trained: the round being generated now."""
        if not self.pending:
            raise RuntimeError("TRL generated a round the scheduler sampler did not draw; is the sampler in use?")
        return self.pending.popleft()

    # ---- checkpoints: the data RNG, the draws counters and the draws not yet trained
    def state_dict(self) -> dict[str, Any]:
        return {"data_rng": self.data_rng.bit_generator.state, "drawn": self.drawn, "updates": self.updates,
                "pending": [asdict(d) for d in self.pending]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.data_rng.bit_generator.state = state["data_rng"]
        self.drawn, self.updates = int(state["drawn"]), int(state["updates"])
        self.replay = deque(Draw(**d) for d in state["pending"])
        self.pending.clear()
