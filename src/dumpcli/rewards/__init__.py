"""Reward functions, found by name through the plugin registry (entry-point group `dumpcli.rewards`).

A reward is a pure function `(completion, answer) -> RewardResult`; `completion` already starts
with the dataset row's `prefill`. Parts are logged separately (`rewards/<part>` in metrics.jsonl).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dumpcli.errors import DumpError
from dumpcli.plugins import REWARDS, load_plugin, plugin_names


@dataclass(frozen=True)
class RewardResult:
    reward: float
    correct: bool  # what `dump eval` counts as accuracy
    parts: dict[str, float] = field(default_factory=dict)


RewardFn = Callable[[str, str], RewardResult]


def available_rewards() -> list[str]:
    return plugin_names(REWARDS)


def get_reward(name: str) -> RewardFn:
    reward = load_plugin(REWARDS, name)
    if not callable(reward):
        raise DumpError(f"reward {name!r} is not a function (completion, answer) -> RewardResult")
    return reward
