"""The kk, arith and ladder rewards: documented values, edge cases, registry names."""

from __future__ import annotations

import json
import random
import statistics
import string

import pytest

from dumpcli.rewards import get_reward
from dumpcli.rewards.arith import arith_reward
from dumpcli.rewards.kk import complete_ground_truth, kk_reward, parse_answer
from dumpcli.rewards.ladder import ladder_reward

TRUTH = "(1) Emma is a knight\n(2) Liam is a knave\n(3) Zoey is a knave"


def think(answer: str, before: str = "<think>I reason.</think>", after: str = "") -> str:
    return f"{before}<answer>{answer}</answer>{after}"


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (think(TRUTH), 3.0),
        (think("(1) Emma is a knight\n(2) Liam is a knight\n(3) Zoey is a knave"), -0.5),
        (think("(1) Emma is a knight\n(2) Liam is a knave"), -1.0),  # a name missing
        (think(TRUTH + "\nAlso Emma is not a knave."), -1.0),  # extra knight/knave mention
        (think(TRUTH.lower()), 3.0),  # names match case-insensitively
        (think(TRUTH.upper().replace("IS A", "is a")), 3.0),
        (think(TRUTH, after="\nThanks for asking!"), 3.0),  # text after </answer> is allowed
        (think(""), -1.0),  # empty answer: does not parse
        (think(TRUTH, before="I reason.</think>"), -3.0),  # <think> missing
        (think(TRUTH, before="<think>a</think>b</think>"), -3.0),  # repeated tag
        (think(TRUTH) + "<answer>x</answer>", -3.0),  # repeated answer block
        ("<think>a<answer>" + TRUTH + "</answer></think>", -3.0),  # wrong order
        ("<think>I give up", -3.0),  # nothing closed
        (think("Emma, Liam and Zoey are knights and knaves"), -1.0),  # unparseable
    ],
)
def test_kk_reward_gives_the_documented_value(completion: str, expected: float) -> None:
    assert kk_reward(completion, TRUTH).reward == expected


def test_kk_reward_parts_and_correct_flag() -> None:
    good = kk_reward(think(TRUTH), TRUTH)
    assert good.parts == {"format": 1.0, "answer": 2.0} and good.correct
    wrong = kk_reward(think(TRUTH.replace("Liam is a knave", "Liam is a knight")), TRUTH)
    assert wrong.parts == {"format": 1.0, "answer": -1.5} and not wrong.correct
    bad = kk_reward("no tags", TRUTH)
    assert bad.parts == {"format": -1.0, "answer": -2.0}


def test_kk_reward_accepts_the_ground_truth_with_any_order_of_lines() -> None:
    shuffled = "(3) Zoey is a knave\n(1) Emma is a knight\n(2) Liam is a knave"
    assert kk_reward(think(shuffled), TRUTH).reward == 3.0


@pytest.mark.parametrize(
    ("answer_text", "truth"),
    [
        ("", ""),  # no people: an empty answer must not match an empty truth
        ("Nobody here.", ""),
        ("(1) Emma is a knight", "The solution is lost."),
        ("(1) Emma is a knight", "(1) Emma is a knight\n(2) ???"),  # Logic-RL skips line 2: +2 there
        ("(1) Emma is a knight", "(1) Emma is a knight\n(2) Emma is a knave"),  # a name twice
        ("(1) Emma is a knight", json.dumps({"statements": "(1) Emma is a knight"})),  # JSON, no solution_text_format
        ("(1) Emma is a knight", json.dumps({"solution_text_format": TRUTH})[:-2]),  # broken JSON: its one line names Emma only
        ("(1) Emma is a knight", TRUTH.replace("\n", "\\n")),  # escaped newlines: one line, three people
    ],
)
def test_kk_reward_never_gives_plus_2_without_every_person_of_the_ground_truth(answer_text: str, truth: str) -> None:
    result = kk_reward(think(answer_text), truth)
    assert not result.correct and result.parts["answer"] == -2.0


def test_kk_parse_answer_needs_people_and_the_ground_truth_needs_all_of_them() -> None:
    assert parse_answer("", []) is None and parse_answer("Emma is a knight", []) is None
    assert complete_ground_truth(TRUTH) == {"Emma": "knight", "Liam": "knave", "Zoey": "knave"}
    assert complete_ground_truth("(1) Emma is a knight\n\n(2) Liam is a knave\n") == {"Emma": "knight", "Liam": "knave"}
    assert complete_ground_truth("(1) Emma is a knight\n(2) Liam") is None
    assert complete_ground_truth("(1) Emma is a knight, so Liam is a knave") is None  # one line, two people


def test_kk_reward_decodes_a_json_ground_truth_like_dump() -> None:
    """DUMP stores json.dumps({solution_text_format, statements}); read as text it names only Emma."""
    raw = json.dumps({"solution_text_format": TRUTH, "statements": "(('lying', 1),)"})
    assert kk_reward(think(TRUTH), raw).reward == 3.0
    assert kk_reward(think("(1) Emma is a knight"), raw).parts["answer"] == -2.0
    assert kk_reward(think(TRUTH.replace("Zoey is a knave", "Zoey is a knight")), raw).parts["answer"] == -1.5


@pytest.mark.parametrize(
    ("completion", "answer", "reward", "correct"),
    [
        ("<answer>39</answer>", "39", 1.2, True),
        ("<answer>17 + 22 = 39", "39", 1.0, True),  # no closing tag: last number counts
        ("<answer>17 + 22 = 39\n\nThis is a sum.", "39", 1.0, True),  # chatter without numbers is harmless
        ("<answer>17 + 22 = 39\n\nIt has 2 parts.", "39", 0.0, False),  # no tag: the last number anywhere counts
        ("<answer>17 + 22 = 38</answer> no, 39", "39", 0.0, False),  # the tag's number counts; no tag credit when wrong
        ("<answer>The answer is 1,234.</answer>", "1234", 1.2, True),
        ("<answer>39.0</answer>", "39", 1.2, True),
        ("<answer>-5</answer>", "5", 0.0, False),  # a closed tag alone earns nothing
        ("<answer>I do not know</answer>", "4", 0.0, False),
        ("<answer>", "4", 0.0, False),
        ("<answer>1 * 7 =</answer>", "7", 0.0, False),  # an unfinished equation is not read as its operand
        ("<answer>1 * 7 =", "7", 0.0, False),
        ("<answer>1 * 7 = 7</answer>", "7", 1.2, True),
        ("<answer>3 * 4 = 12 = 12</answer>", "12", 1.2, True),
    ],
)
def test_arith_reward_credits_the_right_number_and_the_tag_only_with_it(completion: str, answer: str, reward: float, correct: bool) -> None:
    result = arith_reward(completion, answer)
    assert result.reward == pytest.approx(reward) and result.correct is correct


@pytest.mark.parametrize(
    ("completion", "prefix", "length", "exact"),
    [
        ("=1284", 1.0, 1.0, 1.0),
        ("=1294", 0.5, 1.0, 0.0),  # two leading positions right
        ("=2184", 0.0, 1.0, 0.0),  # positions after the first mistake earn nothing
        ("=12845", 1.0, 0.0, 0.0),  # one digit too many
        ("=12a84", 0.5, 1.0, 0.0),  # four digits among other characters
        ("=", 0.0, 0.0, 0.0),
        ("=1284\nreverse 77", 1.0, 1.0, 1.0),  # only the first line counts
        (" 1284 ", 1.0, 1.0, 1.0),  # without the prefill, spaces stripped
    ],
)
def test_ladder_reward_partial_credit(completion: str, prefix: float, length: float, exact: float) -> None:
    result = ladder_reward(completion, "1284")
    assert result.parts == {"prefix": prefix, "length": length, "exact": exact}
    assert result.reward == pytest.approx(0.8 * prefix + 0.1 * length + 0.1 * exact)
    assert result.correct is (exact == 1.0)


def _random_group_has_signal(length: int, rng: random.Random, group: int = 8) -> bool:
    """A random character model: L+4 tokens from printable ASCII + newline (EOS ~ 1 in 100)."""
    alphabet = string.printable[:95] + "\n"
    answer = "".join(rng.choice(string.digits) for _ in range(length))
    rewards = [ladder_reward("=" + "".join(rng.choice(alphabet) for _ in range(length + 4)), answer).reward for _ in range(group)]
    return statistics.pstdev(rewards) > 0


def test_ladder_reward_separates_easy_and_hard_levels_for_a_random_model() -> None:
    rng = random.Random(0)
    short = sum(_random_group_has_signal(1, rng) for _ in range(300)) / 300
    long = sum(_random_group_has_signal(6, rng) for _ in range(300)) / 300
    assert short > 0.8  # length 1: most groups have non-zero advantage
    assert long < 0.15  # length 6: most groups are all equal


def test_built_in_rewards_load_through_the_registry() -> None:
    assert get_reward("kk") is kk_reward
    assert get_reward("arith") is arith_reward
    assert get_reward("ladder") is ladder_reward
