"""The GRPO math: group advantages, the clipped loss, its normalisations and the KL term."""

from __future__ import annotations

import pytest
import torch

from dumpcli.train.grpo import LOSS_NORMALISATIONS, BatchSize, group_advantages, grpo_loss


def test_advantages_are_group_normalised_rewards() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0])
    adv, std = group_advantages(rewards, num_generations=4, eps=0.0)
    first = rewards[:4]
    expected = (first - first.mean()) / first.std()
    assert torch.allclose(adv[:4], expected)
    assert torch.allclose(std, torch.stack([rewards[:4].std(), rewards[4:].std()]))
    assert abs(float(adv[:4].sum())) < 1e-6 and abs(float(adv[4:].sum())) < 1e-6


def test_a_group_with_equal_rewards_has_zero_advantage() -> None:
    adv, std = group_advantages(torch.tensor([0.7, 0.7, 0.7, 0.1, 0.9, 0.5]), num_generations=3)
    assert torch.equal(adv[:3], torch.zeros(3))
    assert float(std[0]) == 0.0 and float(std[1]) > 0.0


def test_unscaled_advantages_are_reward_minus_group_mean() -> None:
    rewards = torch.tensor([3.0, 1.0, 10.0, 0.0])
    adv, _ = group_advantages(rewards, num_generations=2, scale_rewards=False)
    assert torch.allclose(adv, torch.tensor([1.0, -1.0, 5.0, -5.0]))


def _batch(n: int = 6, c: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logps = -torch.rand(n, c, generator=g) * 3
    mask = torch.ones(n, c)
    lengths = torch.randint(1, c + 1, (n,), generator=g)
    for i, length in enumerate(lengths.tolist()):
        mask[i, length:] = 0
    adv = torch.randn(n, generator=g)
    return logps, mask, adv


def test_on_policy_gradient_is_minus_advantage_over_length_and_rows() -> None:
    logps, mask, adv = _batch()
    logps.requires_grad_(True)
    size = BatchSize(rows=6, tokens=float(mask.sum()), max_new_tokens=5)
    loss, _ = grpo_loss(logps, logps.detach(), None, adv, mask, size, loss_type="grpo")
    loss.backward()
    expected = -adv[:, None] * mask / mask.sum(-1, keepdim=True) / 6
    assert torch.allclose(logps.grad, expected, atol=1e-6)


@pytest.mark.parametrize("loss_type", sorted(LOSS_NORMALISATIONS))
def test_micro_batches_add_up_to_the_full_batch_loss(loss_type: str) -> None:
    logps, mask, adv = _batch(n=8, c=7, seed=3)
    old = logps + 0.1 * torch.randn(8, 7, generator=torch.Generator().manual_seed(1))
    size = BatchSize(rows=8, tokens=float(mask.sum()), max_new_tokens=7)
    full, _ = grpo_loss(logps, old, None, adv, mask, size, loss_type=loss_type)
    parts = [grpo_loss(logps[i:i + 2], old[i:i + 2], None, adv[i:i + 2], mask[i:i + 2], size, loss_type=loss_type)[0] for i in range(0, 8, 2)]
    assert torch.allclose(full, torch.stack(parts).sum(), atol=1e-6)


def test_dr_grpo_divides_by_a_constant_so_long_completions_are_not_discounted() -> None:
    logps = torch.zeros(2, 4, requires_grad=True)
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 1, 1]])
    adv = torch.tensor([1.0, 1.0])
    size = BatchSize(rows=2, tokens=5.0, max_new_tokens=4)
    loss, _ = grpo_loss(logps, logps.detach(), None, adv, mask, size, loss_type="dr_grpo")
    loss.backward()
    assert torch.allclose(logps.grad, -mask / 8)


def test_clipped_tokens_get_no_gradient_and_are_counted() -> None:
    logps = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-1.0, 0.0]])  # first token's ratio e ~ 2.7 > 1.2
    adv = torch.tensor([1.0])
    size = BatchSize(rows=1, tokens=2.0, max_new_tokens=2)
    loss, metrics = grpo_loss(logps, old, None, adv, torch.ones(1, 2), size, epsilon=0.2)
    loss.backward()
    assert float(logps.grad[0, 0]) == 0.0 and float(logps.grad[0, 1]) < 0.0
    assert metrics["clip_high_sum"] == 1.0 and metrics["clip_low_sum"] == 0.0


def test_epsilon_high_widens_only_the_upper_clip() -> None:
    logps = torch.tensor([[0.0]], requires_grad=True)
    old = torch.tensor([[-0.25]])  # ratio ~1.28: clipped at 1.2, not at 1.3
    size = BatchSize(rows=1, tokens=1.0, max_new_tokens=1)
    _, clipped = grpo_loss(logps, old, None, torch.tensor([1.0]), torch.ones(1, 1), size, epsilon=0.2)
    _, wider = grpo_loss(logps, old, None, torch.tensor([1.0]), torch.ones(1, 1), size, epsilon=0.2, epsilon_high=0.3)
    assert clipped["clip_high_sum"] == 1.0 and wider["clip_high_sum"] == 0.0


def test_k3_kl_is_zero_at_the_reference_and_positive_away_from_it() -> None:
    logps, mask, adv = _batch()
    size = BatchSize(rows=6, tokens=float(mask.sum()), max_new_tokens=5)
    _, same = grpo_loss(logps, logps, logps.clone(), adv, mask, size, beta=0.1)
    _, away = grpo_loss(logps, logps, logps - 0.5, adv, mask, size, beta=0.1)
    assert same["kl_sum"] == 0.0
    assert away["kl_sum"] > 0.0


def test_kl_term_pulls_the_policy_toward_the_reference() -> None:
    logps = torch.tensor([[-1.0]], requires_grad=True)
    ref = torch.tensor([[-2.0]])
    size = BatchSize(rows=1, tokens=1.0, max_new_tokens=1)
    loss, _ = grpo_loss(logps, logps.detach(), ref, torch.tensor([0.0]), torch.ones(1, 1), size, beta=1.0)
    loss.backward()
    assert float(logps.grad) > 0  # descent lowers logp toward the reference's -2
