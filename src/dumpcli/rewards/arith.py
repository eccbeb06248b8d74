"""Arithmetic reward: credit for the right number only, for models that barely follow format instructions.

answer (+1 / 0): the number the completion ends on equals the answer. Inside a closed
  <answer>...</answer> the last number there counts; without one, the last number anywhere (a
  135M model writes "17 + 22 = 39" and stops, which is right). When that text has an "=", only
  what follows the last "=" counts, so an equation left unfinished ("<answer>1 * 7 =</answer>")
  is not read as its own operand. Commas in 1,234 are ignored; "39.0" equals 39.
format (+0.2 / 0): a closed <answer>...</answer> (prefill included), counted only when the
  answer is right. A tag credit on its own is the cheapest reward there is: with it, GRPO taught
  SmolLM2 to close the tag at once and drop the "a op b = c" working, and accuracy fell
  (benchmarks/DEMO.md).
`correct` is the right number, whatever the format.
"""

from __future__ import annotations

import re

from dumpcli.rewards import RewardResult

FORMAT_BONUS = 0.2
_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def final_number(text: str) -> float | None:
    """The last number in the first closed <answer> tag, else in the whole text; after the last "=" if any."""
    m = _ANSWER.search(text)
    scope = m.group(1) if m else text
    scope = scope.rpartition("=")[2]
    numbers = _NUMBER.findall(scope)
    return float(numbers[-1].replace(",", "")) if numbers else None


def arith_reward(completion: str, answer: str) -> RewardResult:
    got = final_number(completion)
    correct = got is not None and got == float(answer)
    answer_score = 1.0 if correct else 0.0
    fmt = FORMAT_BONUS if correct and _ANSWER.search(completion) else 0.0
    return RewardResult(reward=answer_score + fmt, correct=correct, parts={"answer": answer_score, "format": fmt})
