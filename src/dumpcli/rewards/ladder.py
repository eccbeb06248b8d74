"""Partial-credit reward for the copy/reverse ladder, shaped for GRPO's group advantages.

The prediction is the completion's first line after the prefill "=", spaces stripped.

  reward = 0.8 * prefix + 0.1 * length + 0.1 * exact        (in [0, 1])
  prefix  fraction of leading positions right: "1294" for "1284" -> 2/4
  length  1 when the prediction holds exactly as many digits as the answer (other chars ignored)
  exact   1 when the prediction is the answer; this is `correct`

Why this shape: GRPO learns only from groups whose rewards differ, and DUMP's UCB scheduler
reads mean |normalised advantage| per level as learnability. A randomly initialised character
model sampled at temperature 1 emits about L+4 random printable characters; about 1 in 10 is a
digit, so on length 1 roughly a third of its samples contain exactly one digit and earn the
coarse `length` credit, and now and then the first character is right: groups vary and the
short levels have non-zero advantage from step one. On length 6, six digits among ten random
characters (or a right first character, 1 in ~100) almost never happens, so groups are
all-zero, the advantage is zero and the level reads as not learnable yet. Counting a leading
prefix rather than matching positions anywhere keeps long levels from collecting chance credit,
and rewards the first reversed digit, which the model can learn before the rest.
"""

from __future__ import annotations

from dumpcli.rewards import RewardResult

WEIGHTS = {"prefix": 0.8, "length": 0.1, "exact": 0.1}


def prediction(completion: str) -> str:
    text = completion[1:] if completion.startswith("=") else completion
    return text.split("\n", 1)[0].strip()


def ladder_exact_reward(completion: str, answer: str) -> RewardResult:
    """1 for the exact answer, else 0: no partial credit, so a level the model never solves gives
    all-zero groups (no signal) and one it always solves all-one groups, as on K&K."""
    exact = float(prediction(completion) == answer)
    return RewardResult(reward=exact, correct=bool(exact), parts={"exact": exact})


def ladder_reward(completion: str, answer: str) -> RewardResult:
    pred = prediction(completion)
    lead = 0
    for got, want in zip(pred, answer):
        if got != want:
            break
        lead += 1
    parts = {
        "prefix": lead / len(answer) if answer else float(pred == answer),
        "length": float(sum(c.isdigit() for c in pred) == len(answer)),
        "exact": float(pred == answer),
    }
    reward = sum(WEIGHTS[k] * v for k, v in parts.items())
    return RewardResult(reward=reward, correct=pred == answer, parts=parts)
