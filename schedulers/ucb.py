"""DUMP's UCB curriculum (arXiv 2504.09710), as the authors' code computes it (window, bonus, softmax).

    dump schedulers                                   # see the options
    dump train --scheduler ucb --scheduler-option window=300 --scheduler-option tau=0.1
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.scheduler import (
    Distribution,
    RingWindow,
    Scheduler,
    by_distribution,
    softmax,
    state_array,
    state_value,
)


@dataclass
class UCBOptions:
    window: int = field(
        default=300,
        metadata={"help": "completions per distribution whose |advantage| forms the learnability window (paper code: 300)"},
    )
    c: float = field(default=1.0, metadata={"help": "weight of the exploration bonus; 0 turns it off (paper code: 1.0)"})
    tau: float = field(
        default=0.1, metadata={"help": "softmax temperature over the scores; lower is greedier (paper code: 0.1)"}
    )

    def __post_init__(self) -> None:
        if self.window < 1:
            raise DumpError(f"ucb option window must be >= 1 completion, got {self.window}")
        if not (math.isfinite(self.c) and self.c >= 0):
            raise DumpError(f"ucb option c must be a finite number >= 0, got {self.c}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise DumpError(f"ucb option tau must be a finite number > 0 (softmax temperature), got {self.tau}")


class UCBScheduler(Scheduler):
    """DUMP's UCB curriculum: recent mean |advantage| per distribution plus a UCB bonus, softmaxed.

    L_j     = mean |A| over the last `window` completions drawn from j (0 while empty)
    n_j     = completions drawn from j so far;  N = sum_j n_j
    score_j = L_j + c * sqrt(2 ln(N + 1) / (n_j + 1))
    p       = softmax(score / tau)
    Cold start: every n_j = 0, so every score is 0 and p is uniform. The probabilities drawn
    from for batch t+1 are those after the update with batch t.
    """

    options_class = UCBOptions

    def __init__(self, distributions: Sequence[Distribution], rng: np.random.Generator, options: UCBOptions) -> None:
        super().__init__(distributions, rng, options)
        self.window = RingWindow(self.num_distributions, options.window)
        self.counts = np.zeros(self.num_distributions, dtype=np.int64)
        self._p = softmax(self.scores(), options.tau)

    def learnability(self) -> np.ndarray:
        """L_j: mean |advantage| over each distribution's window. float64 [K]."""
        return self.window.means()

    def scores(self) -> np.ndarray:
        """The UCB score of each distribution. float64 [K]."""
        total = float(self.counts.sum())
        bonus = self.options.c * np.sqrt(2.0 * math.log(total + 1.0) / (self.counts + 1.0))
        return self.learnability() + bonus

    def probabilities(self) -> np.ndarray:
        return self._p.copy()

    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        index, values, lengths = by_distribution(distribution, advantages, self.num_distributions)
        self.window.push(index, np.abs(values), lengths)
        self.counts += lengths
        self._p = softmax(self.scores(), self.options.tau)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "window": self.window.state_dict(), "counts": self.counts.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.window.load_state_dict(state_value(state, "window"))
        self.counts = state_array(state, "counts", self.counts.shape, np.int64)
        self._p = softmax(self.scores(), self.options.tau)
