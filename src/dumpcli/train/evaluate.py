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


@dataclass(frozen=True)
class Sampling:
    """Besides the greedy answer, `samples` completions per row at the training temperature."""

    samples: int = 0  # 0 = greedy only
    temperature: float = 1.0
    top_p: float = 1.0


def evaluate(
    loaded: Any,
    sets: Sequence[EvalSet],
    max_new_tokens: int,
    batch_size: int = 64,
    on_batch: BatchCallback | None = None,
    sampling: Sampling = Sampling(),
) -> dict[str, Any]:
    """Greedy accuracy and mean reward per distribution, and the sampled accuracy when asked (docs/formats.md).

    {"reward", "accuracy", "n", ["sampled_accuracy", "samples"], "distributions": {name: {same keys}}}
    `sampled_accuracy` is the mean over rows of the share of `samples` sampled completions that are
    correct: what the policy does at the temperature it trains at, beside what greedy decoding does.
    """
    import torch

    from dumpcli.policy import generate, render_prompts

    flat = [(k, row) for k, s in enumerate(sets) for row in s.rows]
    scores: list[list[tuple[float, bool]]] = [[] for _ in sets]
    sampled: list[list[float]] = [[] for _ in sets]
    for start in range(0, len(flat), batch_size):
        batch = flat[start:start + batch_size]
        texts = render_prompts(loaded.tokenizer, [row["prompt"] for _, row in batch], [row["prefill"] for _, row in batch])
        with torch.no_grad():
            rollout = generate(loaded, texts, 1, max_new_tokens, greedy=True)
        for (k, row), completion in zip(batch, rollout.texts):
            result = sets[k].reward(row["prefill"] + completion, row["answer"])
            scores[k].append((float(result.reward), bool(result.correct)))
        if sampling.samples:
            with torch.no_grad():
                rollout = generate(loaded, texts, sampling.samples, max_new_tokens,
                                   temperature=sampling.temperature, top_p=sampling.top_p)
            for i, (k, row) in enumerate(batch):  # completions i*S .. i*S+S-1 answer row i
                group = rollout.texts[i * sampling.samples:(i + 1) * sampling.samples]
                right = [sets[k].reward(row["prefill"] + c, row["answer"]).correct for c in group]
                sampled[k].append(sum(right) / len(right))
        if on_batch is not None:
            on_batch(min(start + batch_size, len(flat)), len(flat))
    every = [s for per_set in scores for s in per_set]
    out = _summary(every, [x for per_set in sampled for x in per_set], sampling.samples)
    out["distributions"] = {s.name: _summary(sc, sa, sampling.samples) for s, sc, sa in zip(sets, scores, sampled)}
    return out


def _summary(scores: Sequence[tuple[float, bool]], sampled: Sequence[float], samples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"reward": _mean([r for r, _ in scores]), "accuracy": _mean([float(c) for _, c in scores]),
                           "n": len(scores)}
    if samples:
        out["sampled_accuracy"] = _mean(list(sampled))
        out["samples"] = samples
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
