"""Thompson sampling over DUMP's learnability signal (mean |advantage|), with a forgetting posterior.

    dump train --scheduler thompson --scheduler-option discount=0.9
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, Scheduler, by_distribution, softmax, state_array


@dataclass
class ThompsonOptions:
    discount: float = field(
        default=0.9,
        metadata={"help": "per-step decay of past evidence, in (0, 1]; 0.9 remembers about the last 10 steps"},
    )
    prior_mean: float = field(
        default=1.0, metadata={"help": "prior mean |advantage|; 1.0 (the maximum for std-normalised groups) is optimistic"}
    )
    prior_strength: float = field(default=1.0, metadata={"help": "weight of the prior, in completions (> 0)"})
    noise: float = field(default=1.0, metadata={"help": "assumed std of one completion's |advantage| (> 0)"})
    tau: float = field(default=0.1, metadata={"help": "softmax temperature over the sampled learnabilities (> 0)"})

    def __post_init__(self) -> None:
        if not 0.0 < self.discount <= 1.0:
            raise DumpError(f"thompson option discount must be in (0, 1], got {self.discount}")
        if not math.isfinite(self.prior_mean):
            raise DumpError(f"thompson option prior_mean must be a finite number, got {self.prior_mean}")
        for name in ("prior_strength", "noise", "tau"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise DumpError(f"thompson option {name} must be a finite number > 0, got {value}")


class ThompsonScheduler(Scheduler):
    """Thompson sampling on mean |advantage| per distribution, with a discounted (forgetting) posterior.

    Model: each completion drawn from j has |A| ~ Normal(mu_j, noise^2); prior
    mu_j ~ Normal(prior_mean, noise^2 / prior_strength). Learnability drifts as the model learns,
    so before each update all evidence is multiplied by `discount`: with w_j = discounted count
    and s_j = discounted sum of |A|, the posterior is
        mu_j ~ Normal((prior_strength * prior_mean + s_j) / k_j, noise^2 / k_j),  k_j = prior_strength + w_j.
    A distribution that is not drawn slides back toward the (optimistic) prior, so it is tried
    again. After each update one value theta_j is sampled per distribution and the next batch is
    drawn from p = softmax(theta / tau) (one sample per step, not per slot, so that `probabilities()`
    is exactly what the batch is drawn from). Completions of one group are correlated, so the
    posterior is overconfident; the discount keeps that in check. Cold start: p uniform.
    """

    options_class = ThompsonOptions

    def __init__(self, distributions: Sequence[Distribution], rng: np.random.Generator, options: ThompsonOptions) -> None:
        super().__init__(distributions, rng, options)
        self.weight = np.zeros(self.num_distributions)  # discounted completion count
        self.total = np.zeros(self.num_distributions)  # discounted sum of |A|
        self._p = np.full(self.num_distributions, 1.0 / self.num_distributions)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and std of each distribution's mean |advantage|. float64 [K] each."""
        opts = self.options
        k = opts.prior_strength + self.weight
        return (opts.prior_strength * opts.prior_mean + self.total) / k, opts.noise / np.sqrt(k)

    def probabilities(self) -> np.ndarray:
        return self._p.copy()

    def update(self, distribution: np.ndarray, advantages: np.ndarray, rewards: np.ndarray) -> None:
        index, values, lengths = by_distribution(distribution, advantages, self.num_distributions)
        self.weight = self.weight * self.options.discount + lengths
        step_sums = np.bincount(index, weights=np.abs(values), minlength=self.num_distributions)
        self.total = self.total * self.options.discount + step_sums
        mean, std = self.posterior()
        theta = mean + std * self.rng.standard_normal(self.num_distributions)
        self._p = softmax(theta, self.options.tau)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "weight": self.weight.tolist(),
            "total": self.total.tolist(),
            "probabilities": self._p.tolist(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        shape = (self.num_distributions,)
        self.weight = state_array(state, "weight", shape)
        self.total = state_array(state, "total", shape)
        self._p = state_array(state, "probabilities", shape)
