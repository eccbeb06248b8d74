"""state_dict()/load_state_dict(): a resumed scheduler continues the exact same draws."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from dumpcli.errors import DumpError
from dumpcli.scheduler import Distribution, Scheduler, build_scheduler
from scheduler_steps import update_per_distribution

CASES: list[tuple[str, dict[str, Any]]] = [
    ("ucb", {"window": 20}),
    ("uniform", {}),
    ("sequential", {"steps": 3, "replay": 0.2}),
    ("sequential", {"steps": None, "reward_threshold": 0.4, "reward_window": 10, "replay": 0.1}),
    ("thompson", {}),
]


def dists(k: int) -> list[Distribution]:
    return [Distribution(f"d{j}", 50, float(j)) for j in range(k)]


def run_steps(s: Scheduler, first: int, last: int) -> list[list[int]]:
    """Draw, fake a step whose data depends only on (step, draws), update; return the draws."""
    out = []
    for step in range(first, last):
        draws = s.draw(8)
        out.append(draws.tolist())
        data = np.random.default_rng([7, step])
        counts = np.bincount(draws, minlength=s.num_distributions) * 4
        # Easy distributions (low index) get higher rewards, so sequential's threshold is reached.
        rewards = [(data.random(n) < 1.0 / (1 + j)).astype(float) for j, n in enumerate(counts)]
        advantages = [r - r.mean() if r.size else r for r in rewards]
        update_per_distribution(s, advantages, rewards)
    return out


@pytest.mark.parametrize(("name", "options"), CASES)
def test_scheduler_restored_from_json_state_makes_the_same_draws(name: str, options: dict) -> None:
    straight = build_scheduler(name, dists(5), seed=3, options=options)
    expected = run_steps(straight, 0, 30)

    first = build_scheduler(name, dists(5), seed=3, options=options)
    before = run_steps(first, 0, 15)
    saved = json.dumps(first.state_dict(), allow_nan=False)
    resumed = build_scheduler(name, dists(5), seed=999, options=options)  # the state carries the RNG
    resumed.load_state_dict(json.loads(saved))
    after = run_steps(resumed, 15, 30)

    assert before + after == expected
    assert resumed.probabilities().tolist() == straight.probabilities().tolist()


def test_sequential_round_trip_cases_really_change_stage() -> None:
    # Guards the test above: a resume in the middle of a curriculum is the interesting case.
    for _, options in CASES[2:4]:
        s = build_scheduler("sequential", dists(5), seed=3, options=options)
        run_steps(s, 0, 30)
        assert s.stage > 1


@pytest.mark.parametrize(("name", "options"), CASES)
def test_state_for_other_distributions_is_refused(name: str, options: dict) -> None:
    saved = build_scheduler(name, dists(5), seed=0, options=options).state_dict()
    other = build_scheduler(name, dists(4), seed=0, options=options)
    with pytest.raises(DumpError, match="this run has"):
        other.load_state_dict(saved)


def test_state_of_another_scheduler_is_refused() -> None:
    saved = build_scheduler("uniform", dists(3), seed=0).state_dict()
    ucb = build_scheduler("ucb", dists(3), seed=0)
    with pytest.raises(DumpError, match="another scheduler"):
        ucb.load_state_dict(saved)


def test_ucb_state_with_another_window_is_refused() -> None:
    saved = build_scheduler("ucb", dists(3), seed=0, options={"window": 10}).state_dict()
    ucb = build_scheduler("ucb", dists(3), seed=0, options={"window": 20})
    with pytest.raises(DumpError, match="window of 10"):
        ucb.load_state_dict(saved)
