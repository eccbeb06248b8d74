"""The Knights and Knaves reward of Logic-RL / DUMP, total in {3, -0.5, -1, -3}.

`completion` is the row's prefill plus the model's text; `answer` is the ground truth
"(1) Emma is a knight\\n(2) Liam is a knave" (the importer decodes verl / Logic-RL / DUMP ground
truths to this text; a JSON object with `solution_text_format` is still decoded here, as DUMP's
reward does, so a dataset imported before that keeps scoring right).

format (+1 / -1): exactly one each of <think>, </think>, <answer>, </answer>, in that order.
answer (+2 / -1.5 / -2), only looked at when the format is valid:
  +2    every person of the puzzle is named with the right role;
  -1.5  it parses but some role is wrong;
  -2    it does not parse: the number of "knight"/"knave" mentions in <answer> differs from the
        number of people, a person's "NAME is a knight/knave" is missing, or the format is invalid.
A ground truth that does not yield one person per non-blank line (or yields none) can never give
+2. docs/rewards.md lists every edge case and where this differs from the Logic-RL / DUMP code.
"""

from __future__ import annotations

import json
import re

from dumpcli.rewards import RewardResult

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_GT_LINE = re.compile(r"\b([A-Za-z]+)\b.*?\b(knight|knave)\b", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def solution_text(answer: str) -> str:
    """The "(1) NAME is a ..." text of a ground truth; a JSON object gives its `solution_text_format`.

    Text starting with "{" that is not such an object gives "" (no people, so never +2): read as
    text, its escaped newlines would hide every person but the first.
    """
    if not answer.lstrip().startswith("{"):
        return answer
    try:
        decoded = json.loads(answer)
    except json.JSONDecodeError:
        return ""
    text = decoded.get("solution_text_format") if isinstance(decoded, dict) else None
    return text if isinstance(text, str) else ""


def truth_lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def parse_ground_truth(text: str) -> dict[str, str]:
    """{name: "knight"|"knave"} from "(1) Emma is a knight\\n(2) ...", as Logic-RL parses it."""
    status: dict[str, str] = {}
    for line in truth_lines(text):
        m = _GT_LINE.search(line)
        if m:
            status[m.group(1)] = m.group(2).lower()
    return status


def complete_ground_truth(text: str) -> dict[str, str] | None:
    """Every person of the ground truth, or None unless each line names one new person with one role.

    Logic-RL skips an unparseable line and reads only the first person of a line, so an answer
    naming only the people it did read would score +2.
    """
    truth = parse_ground_truth(text)
    lowered = text.lower()
    roles = lowered.count("knight") + lowered.count("knave")
    return truth if truth and len(truth) == len(truth_lines(text)) == roles else None


def format_ok(text: str) -> bool:
    """Exactly one of each tag, in the order think, /think, answer, /answer."""
    if any(text.count(tag) != 1 for tag in TAGS):
        return False
    positions = [text.find(tag) for tag in TAGS]
    return positions == sorted(positions)


def parse_answer(answer_text: str, names: list[str]) -> dict[str, str] | None:
    """{name: role} when the answer names every person, with as many roles as there are people."""
    if not names:
        return None  # nobody to name: nothing can be right (Logic-RL: an empty result is a failure)
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


def answer_score(completion: str, truth: dict[str, str] | None) -> float:
    """+2 right, -1.5 wrong, -2 unparseable (the format is checked by the caller)."""
    matches = list(_ANSWER.finditer(completion))
    answer_text = matches[-1].group(1).strip() if matches else ""
    if truth is None or not answer_text:
        return -2.0
    predicted = parse_answer(answer_text, list(truth))
    if predicted is None:
        return -2.0
    return 2.0 if predicted == truth else -1.5


def kk_reward(completion: str, answer: str) -> RewardResult:
    fmt_ok = format_ok(completion)
    truth = complete_ground_truth(solution_text(answer))
    answer_part = answer_score(completion, truth) if fmt_ok else -2.0
    format_part = 1.0 if fmt_ok else -1.0
    return RewardResult(
        reward=format_part + answer_part,
        correct=answer_part == 2.0,
        parts={"format": format_part, "answer": answer_part},
    )
