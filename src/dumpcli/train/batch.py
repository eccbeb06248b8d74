"""One step's batch: the contract between draw, rollout, reward, advantage, update, scheduler and logs.

B prompt slots, G completions each, N = B x G completions. Completions are grouped per prompt:
completions `i*G .. i*G+G-1` are prompt slot i's group. This is the only place that layout is
spelled out; everything else asks the batch (`slot_of`, `distribution_of`, `group_start`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dumpcli.rewards import RewardResult

if TYPE_CHECKING:
    import torch

    from dumpcli.policy import Rollout


@dataclass
class StepBatch:
    slots: np.ndarray  # int64 [B]: distribution index of each prompt slot (the scheduler's draw)
    rows: list[dict[str, Any]]  # [B]: the dataset row of each prompt slot
    num_generations: int  # G
    probabilities: np.ndarray  # float64 [K]: the scheduler's probabilities the slots were drawn from
    rollout: Rollout | None = None  # N completions, grouped per prompt
    results: list[RewardResult] | None = None  # [N]
    rewards: torch.Tensor | None = None  # float32 [N]
    advantages: torch.Tensor | None = None  # float32 [N]: what the loss uses
    learnability: torch.Tensor | None = None  # float32 [N]: std-normalised advantages, for the scheduler
    group_std: torch.Tensor | None = None  # float32 [B]
    generation_time_s: float = 0.0  # seconds spent sampling the rollout(s)

    @property
    def num_prompts(self) -> int:
        return len(self.slots)

    @property
    def num_completions(self) -> int:
        return self.num_prompts * self.num_generations

    @property
    def slot_of(self) -> np.ndarray:
        """int64 [N]: the prompt slot of each completion."""
        return np.repeat(np.arange(self.num_prompts), self.num_generations)

    @property
    def distribution_of(self) -> np.ndarray:
        """int64 [N]: the distribution index of each completion."""
        return self.slots[self.slot_of]

    def group_start(self, slot: int) -> int:
        """Index of prompt slot `slot`'s first completion."""
        return slot * self.num_generations

    def completion_rows(self) -> list[dict[str, Any]]:
        """[N]: the dataset row each completion answers."""
        return [self.rows[i] for i in self.slot_of]

    def has_signal(self) -> np.ndarray:
        """bool [B]: the group's rewards differ (a group of equal rewards has advantage 0 throughout)."""
        return self.group_std.numpy() > 0

    def select(self, groups: np.ndarray) -> StepBatch:
        """The prompt groups at indices `groups` (int [M]), each with its G completions, in that order."""
        import torch

        from dumpcli.policy.generation import select_rollout

        groups = np.asarray(groups, dtype=np.int64)
        rows = torch.from_numpy((groups[:, None] * self.num_generations + np.arange(self.num_generations)).reshape(-1))
        return StepBatch(
            self.slots[groups], [self.rows[i] for i in groups], self.num_generations, self.probabilities,
            select_rollout(self.rollout, rows), [self.results[i] for i in rows.tolist()], self.rewards[rows],
            self.advantages[rows], self.learnability[rows], self.group_std[torch.from_numpy(groups)],
            self.generation_time_s,
        )

    @staticmethod
    def concat(batches: list[StepBatch], pad_id: int) -> StepBatch:
        """All groups of `batches`, in order (batches drawn in one step: same G and probabilities)."""
        import torch

        from dumpcli.policy.generation import concat_rollouts

        first = batches[0]
        return StepBatch(
            np.concatenate([b.slots for b in batches]), [r for b in batches for r in b.rows], first.num_generations,
            first.probabilities, concat_rollouts([b.rollout for b in batches], pad_id),
            [r for b in batches for r in b.results], torch.cat([b.rewards for b in batches]),
            torch.cat([b.advantages for b in batches]), torch.cat([b.learnability for b in batches]),
            torch.cat([b.group_std for b in batches]), sum(b.generation_time_s for b in batches),
        )
