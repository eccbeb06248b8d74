"""Reward functions, found by name through the entry-point group `dumpcli.rewards`.

A reward is a pure function `(completion, answer) -> RewardResult`; `completion` already starts
with the dataset row's `prefill`. Parts are logged separately (`rewards/<part>` in metrics.jsonl).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from dumpcli.errors import DumpError

ENTRY_POINT_GROUP = "dumpcli.rewards"


@dataclass(frozen=True)
class RewardResult:
    reward: float
    correct: bool  # what `dump eval` counts as accuracy
    parts: dict[str, float] = field(default_factory=dict)


RewardFn = Callable[[str, str], RewardResult]


@cache
def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_rewards() -> list[str]:
    return sorted(_entry_points())


def get_reward(name: str) -> RewardFn:
    eps = _entry_points()
    if name not in eps:
        raise DumpError(f"unknown reward {name!r}; installed: {', '.join(available_rewards()) or 'none'}")
    return eps[name].load()
