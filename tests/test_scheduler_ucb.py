"""UCB (DUMP's curriculum) against numbers computed by hand from the paper's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dumpcli.scheduler import Distribution, build_scheduler
from scheduler_steps import update_per_distribution


def dists(k: int) -> list[Distribution]:
    return [Distribution(f"d{j}", 100, float(j)) for j in range(k)]


def arrays(*lists: list[float]) -> list[np.ndarray]:
    return [np.array(x, dtype=np.float64) for x in lists]


def softmax_by_hand(scores: list[float], tau: float) -> list[float]:
    top = max(scores)
    e = [math.exp((s - top) / tau) for s in scores]
    return [x / sum(e) for x in e]


def test_cold_start_is_uniform_with_zero_scores() -> None:
    s = build_scheduler("ucb", dists(3), seed=0)
    assert s.scores() == pytest.approx([0.0, 0.0, 0.0], abs=0)
    assert s.probabilities() == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=1e-15)


def test_scores_and_probabilities_after_two_updates_match_hand_computation() -> None:
    s = build_scheduler("ucb", dists(3), seed=0, options={"window": 4})
    update_per_distribution(s, arrays([1.0, -1.0, 0.5, -0.5], [2.0, 0.0], []), arrays([1, 0, 1, 0], [1, 0], []))
    # n = [4, 2, 0], N = 6; L = [0.75, 1.0, 0]
    expected1 = [0.75 + math.sqrt(2 * math.log(7) / 5), 1.0 + math.sqrt(2 * math.log(7) / 3), math.sqrt(2 * math.log(7))]
    assert s.scores() == pytest.approx(expected1, abs=1e-9)
    assert s.probabilities() == pytest.approx(softmax_by_hand(expected1, 0.1), abs=1e-9)

    update_per_distribution(s, arrays([3.0, -3.0], [], [0.25, -0.25, 0.25, -0.25, 1.0]), arrays([1, 0], [], [1, 0, 1, 0, 1]))
    # d0 window [1, 1, .5, .5] + [3, 3] -> [.5, .5, 3, 3]: L0 = 1.75.
    # d2 gets 5 values in a window of 4: the last four, |.| = [.25, .25, .25, 1]: L2 = 0.4375.
    # n = [6, 2, 5], N = 13.
    expected2 = [
        1.75 + math.sqrt(2 * math.log(14) / 7),
        1.0 + math.sqrt(2 * math.log(14) / 3),
        0.4375 + math.sqrt(2 * math.log(14) / 6),
    ]
    assert s.scores() == pytest.approx(expected2, abs=1e-9)
    assert s.probabilities() == pytest.approx(softmax_by_hand(expected2, 0.1), abs=1e-9)
    # Written out, so a wrong softmax in both places cannot agree by accident.
    assert s.scores() == pytest.approx([2.6183411656, 2.3264130401, 1.3754156553], abs=1e-9)
    assert s.probabilities() == pytest.approx([0.9487877885, 0.0512084165, 0.0000037950], abs=1e-9)


def test_options_c_and_tau_change_scores_and_probabilities() -> None:
    s = build_scheduler("ucb", dists(2), seed=0, options={"c": "0.5", "tau": "2"})
    update_per_distribution(s, arrays([1.0, 1.0], []), arrays([1, 1], []))
    expected = [1.0 + 0.5 * math.sqrt(2 * math.log(3) / 3), 0.5 * math.sqrt(2 * math.log(3) / 1)]
    assert s.scores() == pytest.approx(expected, abs=1e-9)
    assert s.probabilities() == pytest.approx(softmax_by_hand(expected, 2.0), abs=1e-9)


def test_window_evicts_the_oldest_completions() -> None:
    s = build_scheduler("ucb", dists(1), seed=0, options={"window": 3})
    update_per_distribution(s, arrays([1.0, 1.0, 1.0]), arrays([0, 0, 0]))
    assert s.learnability() == pytest.approx([1.0], abs=1e-12)
    update_per_distribution(s, arrays([-4.0]), arrays([0]))
    assert s.learnability() == pytest.approx([(1.0 + 1.0 + 4.0) / 3], abs=1e-12)
    update_per_distribution(s, arrays([4.0, 4.0]), arrays([0, 0]))
    assert s.learnability() == pytest.approx([4.0], abs=1e-12)
    assert s.counts.tolist() == [6]  # n counts every completion, not just the window


def test_a_batch_longer_than_the_window_keeps_its_last_completions() -> None:
    s = build_scheduler("ucb", dists(1), seed=0, options={"window": 2})
    update_per_distribution(s, arrays([9.0, 9.0, 9.0, 1.0, 3.0]), arrays([0, 0, 0, 0, 0]))
    assert s.learnability() == pytest.approx([2.0], abs=1e-12)


def test_unexplored_distribution_gets_the_largest_bonus() -> None:
    s = build_scheduler("ucb", dists(2), seed=0)
    update_per_distribution(s, arrays([0.0, 0.0, 0.0, 0.0], []), arrays([0, 0, 0, 0], []))
    expected = [math.sqrt(2 * math.log(5) / 5), math.sqrt(2 * math.log(5) / 1)]
    assert s.scores() == pytest.approx(expected, abs=1e-9)
    p = s.probabilities()
    assert p[1] > p[0]
    assert p[1] == pytest.approx(softmax_by_hand(expected, 0.1)[1], abs=1e-9)


def test_distribution_whose_groups_all_have_zero_advantage_loses_probability() -> None:
    s = build_scheduler("ucb", dists(2), seed=0)
    start = s.probabilities()[0]
    for _ in range(5):
        update_per_distribution(s, arrays([0.0] * 16, [1.0, -1.0] * 8), arrays([3.0] * 16, [3.0, -3.0] * 8))
    # Equal counts give equal bonuses; L = [0, 1], so p0 = 1 / (1 + e^(1/0.1)).
    assert s.probabilities()[0] == pytest.approx(1 / (1 + math.exp(10)), abs=1e-9)
    assert s.probabilities()[0] < start


def test_probabilities_for_the_next_batch_are_those_after_the_last_update() -> None:
    s = build_scheduler("ucb", dists(2), seed=0)
    update_per_distribution(s, arrays([5.0] * 16, [0.0] * 16), arrays([0] * 16, [0] * 16))
    draws = s.draw(1000)
    assert (draws == 0).mean() > 0.99
