"""The uniform baseline: every distribution equally likely, or in proportion to its size.

    dump train --scheduler uniform --scheduler-option weight_by_size=true
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, Scheduler, by_distribution


@dataclass
class UniformOptions:
    weight_by_size: bool = field(
        default=False,
        metadata={"help": "draw each distribution in proportion to its number of training prompts instead of equally"},
    )


class UniformScheduler(Scheduler):
    """Uniform baseline: p_j = 1/K, or proportional to each distribution's size; never learns."""

    options_class = UniformOptions

    def __init__(self, distributions: Sequence[Distribution], rng: np.random.Generator, options: UniformOptions) -> None:
        super().__init__(distributions, rng, options)
        if options.weight_by_size:
            sizes = np.array([d.size for d in self.distributions], dtype=np.float64)
            if sizes.sum() <= 0 or (sizes < 0).any():
                raise DumpError("uniform option weight_by_size needs distributions with training prompts; all are empty")
            self._p = sizes / sizes.sum()
        else:
            self._p = np.full(self.num_distributions, 1.0 / self.num_distributions)

    def probabilities(self) -> np.ndarray:
        return self._p.copy()

    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        # Nothing to learn, but a malformed step is still a trainer bug worth catching here.
        by_distribution(distribution, advantages, self.num_distributions)
        by_distribution(distribution, rewards, self.num_distributions)
