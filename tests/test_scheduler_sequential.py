"""The sequential (easy-to-hard) baseline."""

from __future__ import annotations

import numpy as np
import pytest

from dumpcli.scheduler import Distribution, Scheduler, build_scheduler
from scheduler_steps import update_per_distribution

# Listed out of difficulty order on purpose.
DISTS = [Distribution("mid", 10, 2.0), Distribution("hard", 10, 3.0), Distribution("easy", 10, 1.0)]


def step(s: Scheduler, reward: float, n: int = 8) -> None:
    """One update in which the current distribution's completions all get `reward`."""
    rewards = [np.zeros(0)] * 3
    rewards[s.current] = np.full(n, reward)
    update_per_distribution(s, [np.zeros(len(r)) for r in rewards], rewards)


def test_default_order_is_by_difficulty_easiest_first() -> None:
    s = build_scheduler("sequential", DISTS, seed=0)
    assert [s.names[j] for j in s.order] == ["easy", "mid", "hard"]
    assert s.probabilities().tolist() == [0.0, 0.0, 1.0]


def test_moves_on_after_the_given_number_of_steps_and_stays_on_the_last() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": 2})
    seen = []
    for _ in range(7):
        seen.append(s.names[s.current])
        step(s, 0.0)
    assert seen == ["easy", "easy", "mid", "mid", "hard", "hard", "hard"]


def test_draws_come_only_from_the_current_distribution() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": 1})
    step(s, 0.0)
    assert set(s.draw(100).tolist()) == {0}  # "mid"


def test_explicit_order_comes_first_and_unlisted_ones_follow_by_difficulty() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"order": "hard"})
    assert [s.names[j] for j in s.order] == ["hard", "easy", "mid"]


def test_moves_on_when_recent_mean_reward_reaches_the_threshold() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": None, "reward_threshold": 0.5, "reward_window": 8})
    step(s, 0.0)
    step(s, 0.25)
    assert s.names[s.current] == "easy"
    step(s, 0.75, n=4)  # window of 8: four 0.25 and four 0.75 -> mean 0.5
    assert s.names[s.current] == "mid"


def test_threshold_waits_for_a_full_reward_window() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": None, "reward_threshold": 0.5, "reward_window": 8})
    step(s, 1.0, n=7)
    assert s.names[s.current] == "easy"
    step(s, 1.0, n=1)
    assert s.names[s.current] == "mid"


def test_replay_spreads_its_share_over_the_distributions_already_passed() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": 1, "replay": 0.2})
    assert s.probabilities().tolist() == [0.0, 0.0, 1.0]  # nothing passed yet: all on "easy"
    step(s, 0.0)
    step(s, 0.0)
    # On "hard"; "easy" and "mid" share 0.2.
    assert s.probabilities() == pytest.approx([0.1, 0.8, 0.1], abs=1e-12)
