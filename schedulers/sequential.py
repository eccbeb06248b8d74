"""The sequential (easy-to-hard) baseline: one distribution at a time, in a fixed order.

    dump train --scheduler sequential --scheduler-option steps=10
    dump train --scheduler sequential --scheduler-option order=kk-3,kk-4,kk-5 \\
        --scheduler-option reward_threshold=1.5 --scheduler-option replay=0.1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, RingWindow, Scheduler, by_distribution, state_value


@dataclass
class SequentialOptions:
    order: list[str] | None = field(
        default=None,
        metadata={
            "help": "distribution names in training order (comma-separated); unlisted ones follow by difficulty."
            " Default: by difficulty, easiest first"
        },
    )
    steps: int | None = field(
        default=10, metadata={"help": "move to the next distribution after this many steps on the current one; none: never"}
    )
    reward_threshold: float | None = field(
        default=None,
        metadata={"help": "also move on once the mean reward of the last reward_window completions reaches this"},
    )
    reward_window: int = field(
        default=128, metadata={"help": "completions of the current distribution averaged for reward_threshold"}
    )
    replay: float = field(
        default=0.0, metadata={"help": "share of each batch spread evenly over the distributions already passed"}
    )

    def __post_init__(self) -> None:
        if self.steps is None and self.reward_threshold is None:
            raise DumpError("sequential needs a way to move on: set option steps and/or reward_threshold")
        if self.steps is not None and self.steps < 1:
            raise DumpError(f"sequential option steps must be >= 1 (or none), got {self.steps}")
        if self.reward_threshold is not None and not math.isfinite(self.reward_threshold):
            raise DumpError(f"sequential option reward_threshold must be a finite number, got {self.reward_threshold}")
        if self.reward_window < 1:
            raise DumpError(f"sequential option reward_window must be >= 1 completion, got {self.reward_window}")
        if not 0.0 <= self.replay < 1.0:
            raise DumpError(f"sequential option replay must be in [0, 1), got {self.replay}")


class SequentialScheduler(Scheduler):
    """Sequential baseline: distributions one at a time, easy to hard, after N steps or a reward threshold.

    The current distribution gets 1 - replay of every batch and the ones already passed share
    `replay` evenly. Stage s moves to s+1 after `steps` updates, or as soon as the mean reward of
    the last `reward_window` completions of the current distribution reaches `reward_threshold`
    (only once that many completions were seen); the last distribution is kept for good.
    """

    options_class = SequentialOptions

    def __init__(
        self, distributions: Sequence[Distribution], rng: np.random.Generator, options: SequentialOptions
    ) -> None:
        super().__init__(distributions, rng, options)
        self.order = self._resolve_order(options.order)
        self.stage = 0
        self.steps_in_stage = 0
        self.recent = RingWindow(1, options.reward_window)

    def _resolve_order(self, names: list[str] | None) -> list[int]:
        by_difficulty = sorted(range(self.num_distributions), key=lambda j: self.distributions[j].difficulty)
        if not names:
            return by_difficulty
        position = {name: j for j, name in enumerate(self.names)}
        unknown = [n for n in names if n not in position]
        if unknown:
            raise DumpError(
                f"sequential option order names unknown distributions {unknown}; the dataset has {self.names}"
            )
        if len(set(names)) != len(names):
            raise DumpError(f"sequential option order lists a distribution twice: {names}")
        listed = [position[n] for n in names]
        return listed + [j for j in by_difficulty if j not in set(listed)]

    @property
    def current(self) -> int:
        """Index of the distribution being trained on now."""
        return self.order[self.stage]

    def probabilities(self) -> np.ndarray:
        p = np.zeros(self.num_distributions)
        if self.stage > 0 and self.options.replay > 0:
            p[self.order[: self.stage]] = self.options.replay / self.stage
            p[self.current] = 1.0 - self.options.replay
        else:
            p[self.current] = 1.0
        return p

    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        by_distribution(distribution, advantages, self.num_distributions)
        index, values, _ = by_distribution(distribution, rewards, self.num_distributions)
        current_rewards = values[index == self.current]
        self.recent.push(np.zeros(current_rewards.size, dtype=np.int64), current_rewards, np.array([current_rewards.size]))
        self.steps_in_stage += 1
        if self.stage < self.num_distributions - 1 and self._ready_to_move_on():
            self.stage += 1
            self.steps_in_stage = 0
            self.recent = RingWindow(1, self.options.reward_window)

    def _ready_to_move_on(self) -> bool:
        opts = self.options
        if opts.steps is not None and self.steps_in_stage >= opts.steps:
            return True
        window_full = self.recent.count[0] >= opts.reward_window
        return opts.reward_threshold is not None and window_full and self.recent.means()[0] >= opts.reward_threshold

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "stage": self.stage,
            "steps_in_stage": self.steps_in_stage,
            "recent_rewards": self.recent.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        stage = int(state_value(state, "stage"))
        if not 0 <= stage < self.num_distributions:
            raise DumpError(f"the scheduler state's stage {stage} is out of range for {self.num_distributions} distributions")
        self.stage = stage
        self.steps_in_stage = int(state_value(state, "steps_in_stage"))
        self.recent.load_state_dict(state_value(state, "recent_rewards"))
