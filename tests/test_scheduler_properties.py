"""Invariants every built-in scheduler keeps, for any sequence of updates (hypothesis)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dumpcli.scheduler import Distribution, Scheduler, available_schedulers, build_scheduler
from scheduler_steps import update_per_distribution

BUILT_INS = ["ucb", "uniform", "sequential", "thompson"]
# Defaults, plus settings at the edges (greedy temperatures, tiny windows, no discount).
OPTION_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "ucb": [{}, {"tau": 1e-6, "window": 1, "c": 0.0}, {"tau": 100.0, "c": 1e6}],
    "uniform": [{}, {"weight_by_size": True}],
    "sequential": [{}, {"steps": 1, "replay": 0.5}, {"steps": None, "reward_threshold": 0.0, "reward_window": 1}],
    "thompson": [{}, {"tau": 1e-6, "discount": 1.0, "noise": 1e-6}, {"discount": 1e-9, "prior_strength": 1e6}],
}
CASES = [(name, opts) for name in BUILT_INS for opts in OPTION_VARIANTS[name]]
SETTINGS = settings(max_examples=25, deadline=None)

finite = st.floats(min_value=-1e30, max_value=1e30, allow_nan=False, allow_infinity=False)


def dists(k: int) -> list[Distribution]:
    return [Distribution(f"d{j}", 1 + 7 * j, float(k - j)) for j in range(k)]


def check_invariants(s: Scheduler) -> None:
    p = s.probabilities()
    assert p.shape == (s.num_distributions,)
    assert np.isfinite(p).all()
    assert (p >= 0).all()
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    draws = s.draw(64)
    assert draws.dtype == np.int64
    assert ((draws >= 0) & (draws < s.num_distributions)).all()


def test_every_built_in_is_installed_through_its_entry_point() -> None:
    assert set(BUILT_INS) <= set(available_schedulers())


@pytest.mark.parametrize(("name", "options"), CASES)
@SETTINGS
@given(data=st.data())
def test_probabilities_stay_a_distribution_for_any_small_updates(name: str, options: dict, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 4), label="k")
    s = build_scheduler(name, dists(k), seed=data.draw(st.integers(0, 2**32 - 1)), options=options)
    check_invariants(s)
    for _ in range(data.draw(st.integers(0, 6), label="steps")):
        step = [np.array(data.draw(st.lists(finite, max_size=6))) for _ in range(k)]
        rewards = [np.array(data.draw(st.lists(finite, min_size=len(a), max_size=len(a)))) for a in step]
        update_per_distribution(s, step, rewards)
        check_invariants(s)


@pytest.mark.parametrize(("name", "options"), CASES)
@settings(max_examples=8, deadline=None)
@given(
    k=st.sampled_from([1, 2, 37, 300]),
    scale=st.sampled_from([0.0, 1e-300, 1.0, 1e30]),
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 8),
)
def test_probabilities_stay_a_distribution_for_many_distributions_and_extreme_values(
    name: str, options: dict, k: int, scale: float, seed: int, steps: int
) -> None:
    s = build_scheduler(name, dists(k), seed=seed, options=options)
    data = np.random.default_rng(seed)
    for _ in range(steps):
        counts = np.bincount(s.draw(128), minlength=k) * 16
        step = [scale * data.standard_normal(n) for n in counts]
        update_per_distribution(s, step, [scale * data.standard_normal(n) for n in counts])
        check_invariants(s)


@pytest.mark.parametrize(("name", "options"), CASES)
def test_empty_updates_keep_probabilities_a_distribution(name: str, options: dict) -> None:
    s = build_scheduler(name, dists(3), seed=0, options=options)
    for _ in range(3):
        update_per_distribution(s, [np.zeros(0)] * 3, [np.zeros(0)] * 3)
        check_invariants(s)


@pytest.mark.parametrize("name", BUILT_INS)
def test_non_finite_advantages_are_refused_as_a_trainer_bug(name: str) -> None:
    s = build_scheduler(name, dists(2), seed=0)
    with pytest.raises(ValueError, match="finite"):
        update_per_distribution(s, [np.array([np.nan]), np.zeros(0)], [np.array([np.nan]), np.zeros(0)])


@pytest.mark.parametrize("name", BUILT_INS)
def test_update_naming_a_distribution_that_does_not_exist_is_refused(name: str) -> None:
    s = build_scheduler(name, dists(3), seed=0)
    with pytest.raises(ValueError, match="outside 0..2"):
        s.update(np.array([0, 3]), np.zeros(2), np.zeros(2))


@pytest.mark.parametrize("name", BUILT_INS)
def test_update_with_arrays_of_different_lengths_is_refused(name: str) -> None:
    s = build_scheduler(name, dists(3), seed=0)
    with pytest.raises(ValueError, match="3 distribution indices for 2 values"):
        s.update(np.array([0, 1, 2]), np.zeros(2), np.zeros(2))
