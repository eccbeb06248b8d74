"""GRPO math as pure functions: group advantages and the PPO-clipped token loss.

Nothing here knows about models, data or schedulers; `dumpcli.train.loop` feeds it tensors.
Loss normalisations are named as TRL's `loss_type` and live in one table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class BatchSize:
    """Sizes of the whole step's batch, so micro-batch losses add up to the full-batch loss."""

    rows: int  # completions in the step (batch_size x num_generations)
    tokens: float  # completion tokens in the step (sum of the completion mask)
    max_new_tokens: int


def group_advantages(
    rewards: torch.Tensor, num_generations: int, scale_rewards: bool = True, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """A_i = (r_i - mean(group)) / (std(group) + eps); returns (advantages [N], group std [N / G]).

    Rows i*G .. i*G+G-1 form prompt i's group. Without `scale_rewards` A_i = r_i - mean (Dr. GRPO).
    """
    grouped = rewards.view(-1, num_generations)  # [B, G]
    mean = grouped.mean(dim=1, keepdim=True)  # [B, 1]
    std = grouped.std(dim=1, keepdim=True)  # [B, 1]  unbiased, as TRL
    advantages = grouped - mean  # [B, G]
    if scale_rewards:
        advantages = advantages / (std + eps)  # [B, G]
    return advantages.reshape(-1), std.squeeze(1)  # [N], [B]


# ---------------------------------------------------------------- loss normalisations
# Each maps masked per-token losses of one micro-batch to its share of the step's scalar loss.


def _grpo(token_loss: torch.Tensor, mask: torch.Tensor, size: BatchSize) -> torch.Tensor:
    """Mean over each completion's tokens, then over completions (the GRPO paper)."""
    per_row = (token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # [n]
    return per_row.sum() / size.rows


def _bnpo(token_loss: torch.Tensor, mask: torch.Tensor, size: BatchSize) -> torch.Tensor:
    """Mean over every completion token of the batch (long completions weigh more)."""
    return (token_loss * mask).sum() / max(size.tokens, 1.0)


def _dr_grpo(token_loss: torch.Tensor, mask: torch.Tensor, size: BatchSize) -> torch.Tensor:
    """Sum over tokens divided by a constant, rows x max_new_tokens (Dr. GRPO: no length bias)."""
    return (token_loss * mask).sum() / (size.rows * size.max_new_tokens)


LOSS_NORMALISATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, BatchSize], torch.Tensor]] = {
    "grpo": _grpo,
    "bnpo": _bnpo,
    "dr_grpo": _dr_grpo,
}


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    ref_logps: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    size: BatchSize,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    loss_type: str = "grpo",
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO-clipped GRPO loss of one micro-batch, plus a k3 KL penalty when beta > 0.

    Returns (loss, metrics); metrics are sums over this micro-batch's completion tokens
    (`tokens`, `kl_sum`, `clip_low_sum`, `clip_high_sum`) so micro-batches add up.
    """
    import torch

    eps_high = epsilon if epsilon_high is None else epsilon_high
    mask = mask.to(logps.dtype)  # [n, C]
    adv = advantages.unsqueeze(1)  # [n, 1]
    ratio = torch.exp(logps - old_logps)  # [n, C]  1 on the first PPO iteration
    clipped = torch.clamp(ratio, 1 - epsilon, 1 + eps_high)  # [n, C]
    token_loss = -torch.min(ratio * adv, clipped * adv)  # [n, C]
    if beta > 0:
        assert ref_logps is not None, "beta > 0 needs reference log-probs"
        delta = ref_logps - logps  # [n, C]
        kl = torch.exp(delta) - delta - 1  # [n, C]  k3 estimator of KL(policy || ref), >= 0
        token_loss = token_loss + beta * kl  # [n, C]
    loss = LOSS_NORMALISATIONS[loss_type](token_loss, mask, size)  # []

    with torch.no_grad():
        low = ((ratio < 1 - epsilon) & (adv < 0)).to(mask.dtype)  # [n, C]
        high = ((ratio > 1 + eps_high) & (adv > 0)).to(mask.dtype)  # [n, C]
        metrics = {
            "tokens": float(mask.sum()),
            "kl_sum": float((kl * mask).sum()) if beta > 0 else 0.0,
            "clip_low_sum": float((low * mask).sum()),
            "clip_high_sum": float((high * mask).sum()),
        }
    return loss, metrics
