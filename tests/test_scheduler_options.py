"""Looking schedulers up by name and validating their options: clear DumpErrors for bad input."""

from __future__ import annotations

import pytest

from dumpcli.errors import DumpError
from dumpcli.config import parse_option_pairs, resolve_options
from dumpcli.scheduler import Distribution, build_scheduler

DISTS = [Distribution("easy", 10, 1.0), Distribution("hard", 10, 2.0)]


def test_unknown_scheduler_lists_the_installed_ones() -> None:
    with pytest.raises(DumpError, match=r"unknown scheduler 'ucbb'; installed: .*sequential, thompson, ucb, uniform"):
        build_scheduler("ucbb", DISTS, seed=0)


def test_unknown_option_names_it_and_the_allowed_ones() -> None:
    with pytest.raises(DumpError, match=r"scheduler 'ucb' has no option 'temperature'; its options: window, c, tau"):
        build_scheduler("ucb", DISTS, seed=0, options={"temperature": "0.1"})


def test_ill_typed_option_names_it_and_its_type() -> None:
    with pytest.raises(DumpError, match=r"scheduler 'ucb' option 'window' must be an integer, got 'many'"):
        build_scheduler("ucb", DISTS, seed=0, options={"window": "many"})


def test_fractional_value_for_an_int_option_is_refused() -> None:
    with pytest.raises(DumpError, match=r"option 'window' must be an integer, got 2.5"):
        build_scheduler("ucb", DISTS, seed=0, options={"window": 2.5})


def test_string_values_are_converted_by_the_option_type() -> None:
    s = build_scheduler("ucb", DISTS, seed=0, options={"window": "50", "c": "0.5", "tau": "1e-2"})
    assert (s.options.window, s.options.c, s.options.tau) == (50, 0.5, 0.01)


def test_dashes_in_option_names_are_accepted() -> None:
    s = build_scheduler("uniform", DISTS, seed=0, options={"weight-by-size": "true"})
    assert s.options.weight_by_size is True


def test_list_option_is_parsed_from_a_comma_separated_string() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"order": "hard,easy"})
    assert s.options.order == ["hard", "easy"]


def test_none_is_accepted_for_an_optional_option() -> None:
    s = build_scheduler("sequential", DISTS, seed=0, options={"steps": "none", "reward_threshold": "1.5"})
    assert s.options.steps is None


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ucb", {"tau": "0"}, "ucb option tau must be a finite number > 0"),
        ("ucb", {"tau": "-1"}, "ucb option tau must be a finite number > 0"),
        ("ucb", {"window": "0"}, "ucb option window must be >= 1"),
        ("ucb", {"c": "-0.5"}, "ucb option c must be a finite number >= 0"),
        ("ucb", {"c": "inf"}, "ucb option c must be a finite number >= 0"),
        ("thompson", {"discount": "0"}, r"thompson option discount must be in \(0, 1\]"),
        ("thompson", {"noise": "0"}, "thompson option noise must be a finite number > 0"),
        ("sequential", {"replay": "1"}, r"sequential option replay must be in \[0, 1\)"),
        ("sequential", {"steps": "0"}, "sequential option steps must be >= 1"),
        ("sequential", {"steps": "none"}, "set option steps and/or reward_threshold"),
        ("uniform", {"weight_by_size": "maybe"}, "option 'weight_by_size' must be true or false"),
    ],
)
def test_out_of_range_option_values_are_refused(name: str, options: dict, message: str) -> None:
    with pytest.raises(DumpError, match=message):
        build_scheduler(name, DISTS, seed=0, options=options)


def test_nan_option_value_is_refused() -> None:
    with pytest.raises(DumpError, match="option 'tau' must be a number, got 'nan'"):
        build_scheduler("ucb", DISTS, seed=0, options={"tau": "nan"})


def test_sequential_order_with_an_unknown_distribution_is_refused() -> None:
    with pytest.raises(DumpError, match=r"unknown distributions \['medium'\]; the dataset has \['easy', 'hard'\]"):
        build_scheduler("sequential", DISTS, seed=0, options={"order": "medium,easy"})


def test_scheduler_without_distributions_is_refused() -> None:
    with pytest.raises(DumpError, match="at least one distribution"):
        build_scheduler("uniform", [], seed=0)


def test_option_pairs_split_on_the_first_equals_sign() -> None:
    assert parse_option_pairs(["window=100", "order=a,b", " c = 0.5 "]) == {"window": "100", "order": "a,b", "c": "0.5"}


def test_option_pair_without_equals_sign_is_refused() -> None:
    with pytest.raises(DumpError, match="must look like key=value"):
        parse_option_pairs(["window"])


def test_resolved_options_fill_in_every_default_with_typed_values() -> None:
    assert resolve_options("ucb", {"tau": "0.5"}) == {"window": 300, "c": 1.0, "tau": 0.5}
    assert resolve_options("sequential", {"order": "b,a"})["order"] == ["b", "a"]


@pytest.mark.parametrize("name", ["ucb", "uniform", "sequential", "thompson"])
def test_resolved_options_rebuild_the_same_options(name: str) -> None:
    resolved = resolve_options(name)
    assert resolve_options(name, resolved) == resolved
    assert build_scheduler(name, DISTS, seed=0, options=resolved).options == build_scheduler(name, DISTS, seed=0).options
