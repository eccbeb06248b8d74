"""Scheduler tests state a step per distribution; the API takes it flat, one entry per completion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dumpcli.scheduler import Scheduler


def flat_step(advantages: Sequence[np.ndarray], rewards: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-distribution arrays (j-th = completions of distribution j) -> (distribution, advantages, rewards) [N]."""
    lengths = [np.asarray(a).size for a in advantages]
    distribution = np.repeat(np.arange(len(advantages)), lengths)
    flat = [np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in xs] or [np.zeros(0)])
            for xs in (advantages, rewards)]
    return distribution, flat[0], flat[1]


def update_per_distribution(s: Scheduler, advantages: Sequence[np.ndarray], rewards: Sequence[np.ndarray]) -> None:
    s.update(*flat_step(advantages, rewards))
