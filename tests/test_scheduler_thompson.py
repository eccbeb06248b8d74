"""Thompson sampling over mean |advantage| with a discounted posterior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dumpcli.scheduler import Distribution, build_scheduler
from scheduler_steps import update_per_distribution

DISTS = [Distribution("a", 10, 1.0), Distribution("b", 10, 2.0)]


def test_cold_start_is_uniform() -> None:
    s = build_scheduler("thompson", DISTS, seed=0)
    assert s.probabilities().tolist() == [0.5, 0.5]


def test_posterior_follows_the_discounted_normal_model() -> None:
    opts = {"discount": 0.5, "prior_mean": 1.0, "prior_strength": 2.0, "noise": 0.5}
    s = build_scheduler("thompson", DISTS, seed=0, options=opts)
    update_per_distribution(s, [np.array([0.2, -0.2]), np.zeros(0)], [np.zeros(2), np.zeros(0)])
    update_per_distribution(s, [np.array([0.8]), np.zeros(0)], [np.zeros(1), np.zeros(0)])
    # a: w = 2 * 0.5 + 1 = 2, s = 0.4 * 0.5 + 0.8 = 1.0, k = 2 + 2 = 4
    # b: nothing seen: the prior, k = 2
    mean, std = s.posterior()
    assert mean == pytest.approx([(2.0 * 1.0 + 1.0) / 4, 1.0], abs=1e-12)
    assert std == pytest.approx([0.5 / math.sqrt(4), 0.5 / math.sqrt(2)], abs=1e-12)


def test_distribution_with_zero_advantages_loses_probability() -> None:
    s = build_scheduler("thompson", DISTS, seed=0)
    for _ in range(10):
        update_per_distribution(s, [np.zeros(64), np.tile([1.0, -1.0], 32)], [np.zeros(64), np.tile([1.0, 0.0], 32)])
    # Posterior means ~0.01 vs ~1.0 with std ~0.04: p(a) is e^-10-ish whatever the seed.
    assert s.probabilities()[0] < 1e-3


def test_an_unvisited_distribution_drifts_back_to_the_prior() -> None:
    s = build_scheduler("thompson", DISTS, seed=0, options={"discount": 0.5})
    update_per_distribution(s, [np.zeros(64), np.ones(64)], [np.zeros(64), np.zeros(64)])
    low = s.posterior()[0][0]
    for _ in range(20):
        update_per_distribution(s, [np.zeros(0), np.ones(64)], [np.zeros(0), np.ones(64)])
    assert low < 0.05
    assert s.posterior()[0][0] > 0.95  # forgotten: back near the optimistic prior mean 1.0


def test_probabilities_are_resampled_from_the_posterior_each_update() -> None:
    s = build_scheduler("thompson", DISTS, seed=0)
    seen = set()
    for _ in range(5):
        update_per_distribution(s, [np.ones(2), np.ones(2)], [np.ones(2), np.ones(2)])
        seen.add(tuple(s.probabilities().tolist()))
    assert len(seen) == 5
