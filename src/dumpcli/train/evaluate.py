"""Greedy evaluation on each distribution's test rows: accuracy and mean reward.

Used by the trainer every `run.eval_every` steps (eval.jsonl) and by `dump eval`.
`accuracy` is the fraction of rows whose reward says `correct`; overall numbers are means over
all evaluated rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dumpcli.rewards import RewardFn

BatchCallback = Callable[[int, int], None]  # (rows done, rows in all)


@dataclass(frozen=True)
class EvalSet:
    name: str
    rows: list[dict[str, Any]]  # dataset rows (prompt, prefill, answer, ...)
    reward: RewardFn


def evaluate(
    loaded: Any,
    sets: Sequence[EvalSet],
    max_new_tokens: int,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
) -> dict[str, Any]:
    """{"reward", "accuracy", "n", "distributions": {name: {"reward", "accuracy", "n"}}} (docs/formats.md)."""
    import torch

    from dumpcli.policy import generate, render_prompts

    flat = [(k, row) for k, s in enumerate(sets) for row in s.rows]
    scores: list[list[tuple[float, bool]]] = [[] for _ in sets]
    for start in range(0, len(flat), batch_size):
        batch = flat[start:start + batch_size]
        texts = render_prompts(loaded.tokenizer, [row["prompt"] for _, row in batch], [row["prefill"] for _, row in batch])
        with torch.no_grad():
            rollout = generate(loaded, texts, 1, max_new_tokens, greedy=True)
        for (k, row), completion in zip(batch, rollout.texts):
            result = sets[k].reward(row["prefill"] + completion, row["answer"])
            scores[k].append((float(result.reward), bool(result.correct)))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(flat)), len(flat))
    every = [s for per_set in scores for s in per_set]
    return {
        "reward": _mean([r for r, _ in every]),
        "accuracy": _mean([float(c) for _, c in every]),
        "n": len(every),
        "distributions": {
            s.name: {"reward": _mean([r for r, _ in sc]), "accuracy": _mean([float(c) for _, c in sc]), "n": len(sc)}
            for s, sc in zip(sets, scores)
        },
    }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
