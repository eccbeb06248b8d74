"""An epsilon-greedy scheduler for `dump`, as an example of an out-of-tree plugin.

    pip install ./examples/scheduler-plugin
    dump schedulers                                  # now lists epsilon-greedy
    dump train --scheduler epsilon-greedy --scheduler-option epsilon=0.2
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
class EpsilonGreedyOptions:
    # Each field is an option: `dump schedulers` shows its type, default and this help text,
    # and `--scheduler-option epsilon=0.2` strings are converted to the field's type for you.
    epsilon: float = field(default=0.1, metadata={"help": "share of each batch spread uniformly over all distributions"})
    window: int = field(default=300, metadata={"help": "completions per distribution in the mean |advantage| window"})

    def __post_init__(self) -> None:
        # Range checks live here; raising DumpError makes `dump` print one line and exit 2.
        if not (math.isfinite(self.epsilon) and 0.0 <= self.epsilon <= 1.0):
            raise DumpError(f"epsilon-greedy option epsilon must be in [0, 1], got {self.epsilon}")
        if self.window < 1:
            raise DumpError(f"epsilon-greedy option window must be >= 1, got {self.window}")


class EpsilonGreedyScheduler(Scheduler):
    """Epsilon-greedy: most of each batch from the distribution with the largest recent mean |advantage|.

    p_j = epsilon / K + (1 - epsilon) * [j is among the argmax of L] / (number of argmax),
    with L_j the mean |advantage| over the last `window` completions of j (0 while empty), so
    the cold start, where every L_j is 0, is uniform.
    """

    options_class = EpsilonGreedyOptions

    def __init__(
        self, distributions: Sequence[Distribution], rng: np.random.Generator, options: EpsilonGreedyOptions
    ) -> None:
        super().__init__(distributions, rng, options)
        self.window = RingWindow(self.num_distributions, options.window)

    def probabilities(self) -> np.ndarray:
        learnability = self.window.means()
        best = learnability == learnability.max()
        eps = self.options.epsilon
        return eps / self.num_distributions + (1.0 - eps) * best / best.sum()

    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        index, values, lengths = by_distribution(distribution, advantages, self.num_distributions)
        self.window.push(index, np.abs(values), lengths)

    # state_dict() must be JSON-serialisable and, with the RNG the base class saves, enough to
    # continue the exact same draws after `dump train --resume`.
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "window": self.window.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.window.load_state_dict(state_value(state, "window"))
