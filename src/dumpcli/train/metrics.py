"""Parts of the metrics.jsonl row that both engines compute the same way (docs/formats.md).

`dumpcli.train.loop.Trainer._metrics_row` and the TRL engine's callback (dumpcli.engines.trl)
build their rows with these, so `dump inspect` reads either engine's run alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dumpcli.rewards import RewardResult


def per_distribution(names: Sequence[str], probabilities: np.ndarray, slots: np.ndarray, distribution_of: np.ndarray,
                     rewards: np.ndarray, learnability: np.ndarray, no_signal: np.ndarray) -> dict[str, dict[str, Any]]:
    """`distributions` of a metrics row: probabilities [K] drawn with, slots [B], per completion [N] its
    distribution, reward and the (normalised) advantage the scheduler was updated with, and per slot
    [B] whether its group's rewards were all equal."""
    return {
        name: {
            "probability": float(probabilities[j]), "prompts": int((slots == j).sum()),
            "zero_std_prompts": int((no_signal & (slots == j)).sum()),
            "reward": float(rewards[distribution_of == j].mean()) if (slots == j).any() else None,
            "abs_advantage": float(np.abs(learnability[distribution_of == j]).mean()) if (slots == j).any() else None,
        }
        for j, name in enumerate(names)
    }


def reward_parts(results: Sequence[RewardResult]) -> dict[str, float]:
    """`rewards/<part>`: the mean of each reward part over the step's completions (0 where a completion lacks it)."""
    parts = sorted({p for r in results for p in r.parts})
    return {f"rewards/{part}": float(np.mean([r.parts.get(part, 0.0) for r in results])) for part in parts}
