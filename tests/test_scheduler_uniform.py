"""The uniform baseline."""

from __future__ import annotations

import numpy as np
import pytest

from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, build_scheduler
from scheduler_steps import update_per_distribution

DISTS = [Distribution("a", 10, 1.0), Distribution("b", 30, 2.0), Distribution("c", 60, 3.0)]


def test_every_distribution_is_equally_likely_whatever_the_updates() -> None:
    s = build_scheduler("uniform", DISTS, seed=0)
    update_per_distribution(s, [np.ones(4), np.zeros(0), np.zeros(8)], [np.ones(4), np.zeros(0), np.zeros(8)])
    assert s.probabilities() == pytest.approx([1 / 3] * 3, abs=1e-15)


def test_weight_by_size_draws_in_proportion_to_training_prompts() -> None:
    s = build_scheduler("uniform", DISTS, seed=0, options={"weight_by_size": True})
    assert s.probabilities() == pytest.approx([0.1, 0.3, 0.6], abs=1e-15)
    counts = np.bincount(s.draw(20_000), minlength=3) / 20_000
    assert counts == pytest.approx([0.1, 0.3, 0.6], abs=0.02)


def test_weight_by_size_with_only_empty_distributions_is_refused() -> None:
    empty = [Distribution("a", 0, 1.0), Distribution("b", 0, 2.0)]
    with pytest.raises(DumpError, match="weight_by_size needs distributions with training prompts"):
        build_scheduler("uniform", empty, seed=0, options={"weight_by_size": True})


def test_same_seed_gives_the_same_draws() -> None:
    draws = [build_scheduler("uniform", DISTS, seed=5).draw(50).tolist() for _ in range(2)]
    assert draws[0] == draws[1]
