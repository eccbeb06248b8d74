"""Knights and Knaves puzzles (the DUMP paper's kk-3 ... kk-14), generated and solved exactly.

    dump prepare kk --people 3-14 --train 900 --test 100 --seed 42 --out data/kk

Each of N people makes one statement: a leaf ("X is a knight/knave"), a negation, an
and/or of width 2, an implication or an equivalence, depth <= 2 (the Logic-RL / "memorization
of K&K" sampler's shape). A puzzle is kept only when exactly one of the 2^N assignments makes
every knight's statement true and every knave's false. All 2^N assignments are checked at once
as a boolean matrix [2^N, N], so N = 14 costs a few vector operations per statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dumpcli.data.common import ProgressFn, SourceOutput, check_counts, no_progress, rng_for
from dumpcli.data.dataset import DistributionInfo, make_row
from dumpcli.errors import DumpError

# Statements are nested tuples: ("knight", p) | ("knave", p) | ("not", s) | (op, s1, s2), op in OPS.
Statement = tuple[Any, ...]
OPS = ("and", "or", "->", "<=>")

NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mason", "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Jacob", "Abigail", "Owen",
    "Ella", "Jack", "Scarlett", "Henry", "Grace", "Samuel", "Chloe", "David", "Zoey", "Joseph",
    "Lily", "Daniel", "Aria", "Matthew", "Nora", "Aiden", "Riley", "Sebastian", "Hannah", "Oliver",
    "Victoria", "Benjamin", "Luna", "Alexander", "Penelope", "William", "Layla", "Michael", "Aurora", "Jackson",
)  # fmt: skip

SYSTEM_PROMPT = (
    "You are a helpful assistant. The assistant first thinks about the reasoning process in the mind "
    "and then provides the user with the answer. The reasoning process and answer are enclosed within "
    "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here "
    "</think><answer> answer here </answer>. Now the user asks you to solve a logical reasoning problem. "
    "After thinking, when you finally reach a conclusion, clearly state the identity of each character "
    "within <answer> </answer> tags. i.e., <answer> (1) Zoey is a knight\n(2) ... </answer>."
)
INTROS = (
    "A very special island is inhabited only by knights and knaves. Knights always tell the truth, "
    "and knaves always lie. You meet {n} inhabitants: {names}.",
    "On an island every inhabitant is either a knight, who always tells the truth, or a knave, who "
    "always lies. You meet {n} of them: {names}.",
    "Knights never lie and knaves never tell the truth. {n} islanders stand before you: {names}.",
)
SAYINGS = ('{name} said, "{s}."', '{name} stated, "{s}."', 'In {name}\'s words: "{s}."',
           '{name} remarked, "{s}."', '"{s}," claimed {name}.', '{name} told you, "{s}."')  # fmt: skip
QUESTION = " So who is a knight and who is a knave?"


@dataclass(frozen=True)
class KKSpec:
    people: tuple[int, ...] = tuple(range(3, 15))
    train: int = 900
    test: int = 100
    seed: int = 42
    depth: int = 2
    width: int = 2


@dataclass(frozen=True)
class Puzzle:
    statements: tuple[Statement, ...]  # statements[i] is what person i says
    solution: tuple[bool, ...]  # solution[i]: person i is a knight


# Sampling


def sample_statement(rng: np.random.Generator, speaker: int, n: int, depth: int, width: int = 2) -> Statement:
    """One statement by `speaker`, never the paradox "I am a knave"."""
    dice = int(rng.integers(6))
    if depth <= 1 or dice == 0:
        while True:
            role = ("knight", "knave")[int(rng.integers(2))]
            person = int(rng.integers(n))
            if not (role == "knave" and person == speaker):
                return (role, person)
    if dice == 1:
        return ("not", sample_statement(rng, speaker, n, depth - 1, width))
    op = OPS[dice - 2]
    count = int(rng.integers(2, width + 1)) if op in ("and", "or") else 2
    subs: list[Statement] = []
    while len(subs) < count:
        sub = sample_statement(rng, speaker, n, depth - 1, width)
        if sub not in subs:
            subs.append(sub)
    return (op, *subs)


def all_assignments(n: int) -> np.ndarray:
    """[2^n, n] bool: row k is assignment k, column i says whether person i is a knight."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)


def truth(stmt: Statement, assign: np.ndarray) -> np.ndarray:
    """[2^n] bool: the statement's truth value under every assignment at once."""
    kind = stmt[0]
    if kind == "knight":
        return assign[:, stmt[1]]
    if kind == "knave":
        return ~assign[:, stmt[1]]
    if kind == "not":
        return ~truth(stmt[1], assign)
    values = [truth(s, assign) for s in stmt[1:]]
    if kind == "and":
        return np.logical_and.reduce(values)
    if kind == "or":
        return np.logical_or.reduce(values)
    if kind == "->":
        return ~values[0] | values[1]
    if kind == "<=>":
        return values[0] == values[1]
    raise ValueError(f"unknown statement kind {kind!r}")


def solutions(statements: tuple[Statement, ...], assign: np.ndarray) -> np.ndarray:
    """Indices of assignments where each person is a knight exactly when their statement holds."""
    ok = np.ones(assign.shape[0], dtype=bool)
    for i, stmt in enumerate(statements):
        ok &= assign[:, i] == truth(stmt, assign)
    return np.flatnonzero(ok)


def generate_puzzles(n: int, count: int, rng: np.random.Generator, depth: int = 2, width: int = 2,
                     progress: ProgressFn = no_progress, label: str = "") -> list[Puzzle]:  # fmt: skip
    """`count` distinct puzzles with N = n people and exactly one solution.

    Stops with DumpError when it keeps finding nothing new (small N has few distinct puzzles).
    """
    assign = all_assignments(n)
    seen: set[tuple[Statement, ...]] = set()
    out: list[Puzzle] = []
    misses, max_misses = 0, 20_000
    while len(out) < count:
        statements = tuple(sample_statement(rng, i, n, depth, width) for i in range(n))
        sols = solutions(statements, assign) if statements not in seen else ()
        if len(sols) != 1:
            misses += 1
            if misses >= max_misses:
                raise DumpError(
                    f"{n} people: only {len(out)} distinct puzzles with a unique solution found after "
                    f"{max_misses} tries in a row, {count} asked for; ask for fewer (--train + --test)"
                )
            continue
        misses = 0
        seen.add(statements)
        out.append(Puzzle(statements, tuple(bool(v) for v in assign[sols[0]])))
        if len(out) % 20 == 0 or len(out) == count:
            progress(label, len(out), count)
    return out


# Text


def statement_text(stmt: Statement, speaker: int, names: list[str]) -> str:
    kind = stmt[0]
    if kind in ("knight", "knave"):
        return _leaf(stmt, speaker, names, negated=False)
    if kind == "not":
        inner = stmt[1]
        if inner[0] in ("knight", "knave"):
            return _leaf(inner, speaker, names, negated=True)
        return f"it is not the case that {statement_text(inner, speaker, names)}"
    parts = [statement_text(s, speaker, names) for s in stmt[1:]]
    if kind in ("and", "or"):
        return f" {kind} ".join(parts)
    if kind == "->":
        return f"if {parts[0]} then {parts[1]}"
    return f"{parts[0]} if and only if {parts[1]}"


def _leaf(stmt: Statement, speaker: int, names: list[str], negated: bool) -> str:
    subject, verb = ("I", "am") if stmt[1] == speaker else (names[stmt[1]], "is")
    return f"{subject} {verb}{' not' if negated else ''} a {stmt[0]}"


def _join_names(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f", and {names[-1]}" if len(names) > 2 else " and ".join(names)


def solution_text(names: list[str], solution: tuple[bool, ...]) -> str:
    """The ground truth: "(1) Emma is a knight\\n(2) Liam is a knave"."""
    return "\n".join(f"({i + 1}) {name} is a {'knight' if k else 'knave'}" for i, (name, k) in enumerate(zip(names, solution)))


def puzzle_text(puzzle: Puzzle, names: list[str], rng: np.random.Generator) -> str:
    n = len(names)
    intro = INTROS[int(rng.integers(len(INTROS)))].format(n=n, names=_join_names(names))
    lines = []
    for i, stmt in enumerate(puzzle.statements):
        s = statement_text(stmt, i, names)
        lines.append(SAYINGS[int(rng.integers(len(SAYINGS)))].format(name=names[i], s=s[0].upper() + s[1:]))
    return intro + " " + " ".join(lines) + QUESTION


def kk_row(puzzle: Puzzle, distribution: str, split: str, index: int, rng: np.random.Generator) -> dict[str, Any]:
    names = [NAMES[int(i)] for i in rng.choice(len(NAMES), size=len(puzzle.statements), replace=False)]
    prompt = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": puzzle_text(puzzle, names, rng)}]
    meta = {"people": len(names), "names": names, "statements": puzzle.statements, "solution": puzzle.solution}
    return make_row(distribution, split, index, prompt, "<think>", solution_text(names, puzzle.solution), meta)


def build(spec: KKSpec, progress: ProgressFn = no_progress) -> SourceOutput:
    """Every `kk-N` distribution of the spec, train and test rows."""
    check_counts(spec.train, spec.test)
    bad = [n for n in spec.people if n < 2]
    if bad:
        raise DumpError(f"--people must be >= 2 (got {bad[0]}); K&K needs at least two inhabitants")
    too_many = [n for n in spec.people if n > len(NAMES)]
    if too_many:
        raise DumpError(f"--people must be <= {len(NAMES)} (got {too_many[0]}); there are only {len(NAMES)} names")
    if len(set(spec.people)) != len(spec.people):
        raise DumpError(f"--people lists a count twice: {list(spec.people)}")
    out = SourceOutput()
    for n in spec.people:
        name = f"kk-{n}"
        rng = rng_for(spec.seed, 1, n)
        puzzles = generate_puzzles(n, spec.train + spec.test, rng, spec.depth, spec.width, progress, name)
        for split, chunk in (("test", puzzles[: spec.test]), ("train", puzzles[spec.test :])):
            out.rows[split].extend(kk_row(p, name, split, i, rng) for i, p in enumerate(chunk))
        made = {"generator": "kk", "people": n, "seed": spec.seed, "depth": spec.depth, "width": spec.width}
        out.distributions.append(DistributionInfo(name, "kk", float(n), "kk", {"train": spec.train, "test": spec.test}, made))
    return out
