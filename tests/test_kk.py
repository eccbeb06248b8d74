"""K&K generator: every stored solution is the only one, checked by reading the puzzle text back."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from dumpcli.data import kk
from dumpcli.data.common import rng_for

LEAF = re.compile(r"^(\w+) (?:is|am)( not)? a (knight|knave)$")


def parse_statement(text: str, speaker: int, names: list[str]) -> tuple:
    """An independent reader of the generated English, to a tuple tree."""
    text = text[0].lower() + text[1:]
    if text.startswith("if ") and " then " in text:
        a, b = text[3:].split(" then ", 1)
        return ("->", parse_statement(a, speaker, names), parse_statement(b, speaker, names))
    if " if and only if " in text:
        a, b = text.split(" if and only if ", 1)
        return ("<=>", parse_statement(a, speaker, names), parse_statement(b, speaker, names))
    if text.startswith("it is not the case that "):
        return ("not", parse_statement(text[len("it is not the case that ") :], speaker, names))
    for op in ("and", "or"):
        if f" {op} " in text:
            a, b = text.split(f" {op} ", 1)
            return (op, parse_statement(a, speaker, names), parse_statement(b, speaker, names))
    m = LEAF.match(text)
    assert m, f"unreadable statement {text!r}"
    who = speaker if m.group(1).lower() == "i" else [n.lower() for n in names].index(m.group(1).lower())
    leaf = (m.group(3), who)
    return ("not", leaf) if m.group(2) else leaf


def holds(stmt: tuple, knights: tuple[bool, ...]) -> bool:
    kind = stmt[0]
    if kind == "knight":
        return knights[stmt[1]]
    if kind == "knave":
        return not knights[stmt[1]]
    if kind == "not":
        return not holds(stmt[1], knights)
    a, b = (holds(s, knights) for s in stmt[1:])
    return {"and": a and b, "or": a or b, "->": (not a) or b, "<=>": a == b}[kind]


def brute_force(statements: list[tuple]) -> list[tuple[bool, ...]]:
    n = len(statements)
    return [k for k in itertools.product([True, False], repeat=n) if all(k[i] == holds(s, k) for i, s in enumerate(statements))]


def quoted_statements(user_text: str) -> list[str]:
    return re.findall(r'"(.*?)[.,]"', user_text)


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    out = kk.build(kk.KKSpec(people=(2, 3, 4, 5), train=60, test=15, seed=7))
    return out.rows["train"] + out.rows["test"]


def test_every_stored_solution_is_the_only_assignment_satisfying_the_text(generated: list[dict]) -> None:
    assert len(generated) == 300
    for row in generated:
        meta = json.loads(row["meta"])
        names = meta["names"]
        texts = quoted_statements(row["prompt"][1]["content"])
        assert len(texts) == len(names)
        statements = [parse_statement(t, i, names) for i, t in enumerate(texts)]
        assert brute_force(statements) == [tuple(meta["solution"])], row["id"]


def test_ground_truth_lists_every_person_in_order_with_the_stored_role(generated: list[dict]) -> None:
    for row in generated[:50]:
        meta = json.loads(row["meta"])
        expected = [f"({i + 1}) {n} is a {'knight' if k else 'knave'}" for i, (n, k) in enumerate(zip(meta["names"], meta["solution"]))]
        assert row["answer"].split("\n") == expected


def test_puzzles_are_distinct_within_a_distribution_and_across_splits() -> None:
    out = kk.build(kk.KKSpec(people=(3,), train=200, test=50, seed=1))
    structures = [json.dumps(json.loads(r["meta"])["statements"]) for r in out.rows["train"] + out.rows["test"]]
    assert len(set(structures)) == 250


def test_statements_have_depth_at_most_two_and_never_claim_i_am_a_knave() -> None:
    rng = rng_for(0, 99)
    for _ in range(2000):
        s = kk.sample_statement(rng, speaker=0, n=4, depth=2)
        children = s[1:] if s[0] not in ("knight", "knave") else ()
        assert all(c[0] in ("knight", "knave") for c in children)
        for leaf in [s, *children]:
            assert leaf != ("knave", 0)


def test_vectorised_solver_agrees_with_brute_force_on_random_statement_sets() -> None:
    rng = rng_for(3, 3)
    assign = kk.all_assignments(4)
    for _ in range(300):
        statements = tuple(kk.sample_statement(rng, i, 4, 2) for i in range(4))
        fast = [tuple(bool(v) for v in assign[i]) for i in kk.solutions(statements, assign)]
        assert sorted(fast) == sorted(brute_force(list(statements)))


def test_names_and_phrasings_vary_across_puzzles(generated: list[dict]) -> None:
    first_names = {json.loads(r["meta"])["names"][0] for r in generated}
    intros = {r["prompt"][1]["content"][:30] for r in generated}
    assert len(first_names) > 10 and len(intros) >= 3


def test_rows_carry_the_think_prefill_and_the_logic_rl_system_prompt(generated: list[dict]) -> None:
    row = generated[0]
    assert row["prefill"] == "<think>"
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert "<answer>" in row["prompt"][0]["content"]
