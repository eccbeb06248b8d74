"""The Knights and Knaves reward of Logic-RL / DUMP (ALGORITHM.md), total in {3, -0.5, -1, -3}.

`completion` is the row's prefill ("<think>") plus the model's text; `answer` is the ground truth
"(1) Emma is a knight\\n(2) Liam is a knave" (an imported verl row's `ground_truth` dict is
reduced to its `solution_text_format` at import).

format (+1 / -1): exactly one each of <think>, </think>, <answer>, </answer>, in that order.
answer (+2 / -1.5 / -2), only looked at when the format is valid:
  +2    every person is named with the right role;
  -1.5  it parses but some role is wrong;
  -2    it does not parse: the number of "knight"/"knave" mentions in <answer> differs from the
        number of people, a person's "NAME is a knight/knave" is missing, or the format is invalid.
Edge cases, as in the Logic-RL code: names and roles match case-insensitively; text after
</answer> is allowed; an empty <answer></answer> scores -2 ("does not parse"); a repeated tag
makes the format invalid (-3 in all).
"""

from __future__ import annotations

import re

from dumpcli.rewards import RewardResult

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_GT_LINE = re.compile(r"\b([A-Za-z]+)\b.*?\b(knight|knave)\b", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def parse_ground_truth(text: str) -> dict[str, str]:
    """{name: "knight"|"knave"} from "(1) Emma is a knight\\n(2) ..."."""
    status: dict[str, str] = {}
    for line in text.split("\n"):
        m = _GT_LINE.search(line.strip())
        if m:
            status[m.group(1)] = m.group(2).lower()
    return status


def format_ok(text: str) -> bool:
    """Exactly one of each tag, in the order think, /think, answer, /answer."""
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    positions = [text.find(tag) for tag in TAGS]
    return positions == sorted(positions)


def parse_answer(answer_text: str, names: list[str]) -> dict[str, str] | None:
    """{name: role} when the answer names every person exactly as many times as there are people."""
    lowered = answer_text.lower()
    if lowered.count("knight") + lowered.count("knave") != len(names):
        return None
    status: dict[str, str] = {}
    for name in names:
        m = re.search(rf"\b{re.escape(name)}\b\s+is\s+a\s+\b(knight|knave)\b", answer_text, re.IGNORECASE)
        if not m:
            return None
        status[name] = m.group(1).lower()
    return status


def kk_reward(completion: str, answer: str) -> RewardResult:
    truth = parse_ground_truth(answer)
    fmt_ok = format_ok(completion)
    matches = list(_ANSWER.finditer(completion))
    answer_text = matches[-1].group(1).strip() if matches else ""
    answer_score = -2.0
    if fmt_ok and answer_text:
        predicted = parse_answer(answer_text, list(truth))
        if predicted is not None:
            answer_score = 2.0 if predicted == truth else -1.5
    format_score = 1.0 if fmt_ok else -1.0
    return RewardResult(
        reward=format_score + answer_score,
        correct=answer_score == 2.0,
        parts={"format": format_score, "answer": answer_score},
    )
