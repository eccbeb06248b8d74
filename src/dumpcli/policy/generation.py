"""Rollouts and per-token log-probs: the two places the GRPO step touches the model.

Both compute positions the same way (from the attention mask, so left padding does not shift
them), which makes the log-prob of a sampled token under `per_token_logprobs` equal the one
the sampler used. torch is imported inside the functions so `import dumpcli.policy` stays cheap.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dumpcli.errors import DumpError

if TYPE_CHECKING:
    import torch

# Budget for one chunk's completion logits (rows x positions x vocab, float32): 128 MiB.
LOGITS_BUDGET_ELEMENTS = 2**25


@dataclass
class Rollout:
    """G completions per prompt; rows i*G .. i*G+G-1 belong to prompt i."""

    prompt_ids: torch.Tensor  # [N, P] left padded
    prompt_mask: torch.Tensor  # [N, P]
    completion_ids: torch.Tensor  # [N, C]; after the first EOS: pad
    completion_mask: torch.Tensor  # [N, C]; 1 up to and including the first EOS, 0 after
    texts: list[str]  # decoded completions, special tokens dropped


def select_rollout(rollout: Rollout, rows: torch.Tensor) -> Rollout:
    """The completions at indices `rows` (int64 [M]), in that order."""
    index = rows.tolist()
    return Rollout(rollout.prompt_ids[rows], rollout.prompt_mask[rows], rollout.completion_ids[rows],
                   rollout.completion_mask[rows], [rollout.texts[i] for i in index])


def concat_rollouts(rollouts: list[Rollout], pad_id: int) -> Rollout:
    """One rollout of all rows: prompts re-padded on the left, completions on the right (masks 0 there)."""
    import torch

    width_p = max(r.prompt_ids.shape[1] for r in rollouts)
    width_c = max(r.completion_ids.shape[1] for r in rollouts)

    def pad(t: torch.Tensor, width: int, value: int, left: bool) -> torch.Tensor:
        extra = t.new_full((t.shape[0], width - t.shape[1]), value)
        return torch.cat([extra, t] if left else [t, extra], dim=1)

    return Rollout(
        prompt_ids=torch.cat([pad(r.prompt_ids, width_p, pad_id, True) for r in rollouts]),  # [N, P]
        prompt_mask=torch.cat([pad(r.prompt_mask, width_p, 0, True) for r in rollouts]),  # [N, P]
        completion_ids=torch.cat([pad(r.completion_ids, width_c, pad_id, False) for r in rollouts]),  # [N, C]
        completion_mask=torch.cat([pad(r.completion_mask, width_c, 0, False) for r in rollouts]),  # [N, C]
        texts=[t for r in rollouts for t in r.texts],
    )


def eos_token_ids(loaded: Any) -> list[int]:
    """Every id that ends a completion: the tokenizer's EOS plus the generation config's (chat
    models often end turns with a token that is not the tokenizer's EOS)."""
    ids = {int(loaded.tokenizer.eos_token_id)}
    extra = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif extra:
        ids.update(int(i) for i in extra)
    return sorted(ids)


def generate(
    loaded: Any,
    prompt_texts: list[str],
    num_generations: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    greedy: bool = False,
) -> Rollout:
    """Sample `num_generations` completions per prompt with the KV cache, from torch's global RNG.

    Each prompt is prefilled once and its cache repeated G times. The sampler uses exactly
    softmax(logits / temperature) (nucleus-truncated when top_p < 1): no top-k, repetition
    penalty or other defaults from the model's generation config sneak in.
    """
    import torch

    _check_sampling(num_generations, max_new_tokens, temperature, top_p, greedy)
    tokenizer = loaded.tokenizer
    add_special = not bool(getattr(tokenizer, "chat_template", None))
    enc = tokenizer(prompt_texts, return_tensors="pt", padding=True, add_special_tokens=add_special)
    prompt_ids = enc["input_ids"].to(loaded.device)  # [B, P]
    prompt_mask = enc["attention_mask"].to(loaded.device)  # [B, P]
    eos = torch.tensor(eos_token_ids(loaded), device=loaded.device)
    model = loaded.model
    was_training = model.training
    model.eval()  # no dropout while sampling
    try:
        with torch.no_grad():
            completion_ids = _sample(
                model, prompt_ids, prompt_mask, num_generations, max_new_tokens,
                eos, int(tokenizer.pad_token_id), temperature, top_p, greedy,
            )  # [N, C]
    finally:
        model.train(was_training)
    completion_mask = mask_after_eos(completion_ids, eos)  # [N, C]
    rows = [ids[: int(n)].tolist() for ids, n in zip(completion_ids, completion_mask.sum(1))]
    texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
    return Rollout(
        prompt_ids=prompt_ids.repeat_interleave(num_generations, 0),
        prompt_mask=prompt_mask.repeat_interleave(num_generations, 0),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        texts=texts,
    )


def _check_sampling(num_generations: int, max_new_tokens: int, temperature: float, top_p: float, greedy: bool) -> None:
    if num_generations < 1:
        raise DumpError(f"num_generations must be at least 1, got {num_generations}")
    if max_new_tokens < 1:
        raise DumpError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if not greedy and temperature <= 0:
        raise DumpError(f"temperature must be > 0 (use greedy for argmax decoding), got {temperature}")
    if not 0 < top_p <= 1:
        raise DumpError(f"top_p must be in (0, 1], got {top_p}")


def _sample(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    groups: int,
    max_new_tokens: int,
    eos: torch.Tensor,
    pad_id: int,
    temperature: float,
    top_p: float,
    greedy: bool,
) -> torch.Tensor:
    import torch
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    cache_kw = _cache_kwarg(model)
    positions = positions_from_mask(prompt_mask)  # [B, P]
    out = model(
        input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=positions,
        use_cache=True, logits_to_keep=1, **{cache_kw: cache},
    )
    # Prefill once per prompt, then fan the cache out to the G completions of its group.
    cache.batch_repeat_interleave(groups)
    logits = out.logits[:, -1].float().repeat_interleave(groups, 0)  # [N, V]
    mask = prompt_mask.repeat_interleave(groups, 0)  # [N, P]
    next_pos = positions[:, -1:].repeat_interleave(groups, 0) + 1  # [N, 1]
    finished = torch.zeros(logits.shape[0], dtype=torch.bool, device=logits.device)  # [N]
    tokens = []
    for step in range(max_new_tokens):
        token = pick_tokens(logits, temperature, top_p, greedy)  # [N]
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        tokens.append(token)
        finished |= torch.isin(token, eos)
        if step == max_new_tokens - 1 or bool(finished.all()):  # CPU-GPU sync point, once per token
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)  # [N, P+t+1]
        out = model(
            input_ids=token[:, None], attention_mask=mask, position_ids=next_pos,
            use_cache=True, **{cache_kw: cache},
        )
        next_pos = next_pos + 1
        logits = out.logits[:, -1].float()  # [N, V]
    return torch.stack(tokens, dim=1)


def _cache_kwarg(model: Any) -> str:
    # transformers renamed `past_key_values` to `cache` during 5.x; accept either version.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def pick_tokens(logits: torch.Tensor, temperature: float, top_p: float, greedy: bool) -> torch.Tensor:
    """Next token per row from [N, V] logits: argmax, or a draw from the tempered (nucleus) softmax."""
    import torch

    if greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)  # [N, V]
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)  # [N, V]
        # Keep the smallest prefix whose mass reaches top_p (the top token always stays).
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, num_samples=1).squeeze(1)


def mask_after_eos(completion_ids: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """[N, C] long mask: 1 up to and including the first EOS of each row, 0 after it."""
    import torch

    is_eos = torch.isin(completion_ids, eos.to(completion_ids.device)).long()  # [N, C]
    eos_before = is_eos.cumsum(dim=1) - is_eos  # [N, C] EOS count strictly before each position
    return (eos_before == 0).long()


def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that count only attended tokens, so left padding does not shift them."""
    return (mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def per_token_logprobs(
    model: Any,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completion_ids: torch.Tensor,
    completion_mask: torch.Tensor,
    chunk_size: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """[N, C] float32 log-prob of each completion token under `model` (masked positions included;
    multiply by completion_mask). Only the completion positions' logits are computed, `chunk_size`
    rows at a time (default: as many as fit a 128 MiB logits budget), so vocab x seq x batch is
    never materialised at once. Differentiable; under grad the caller should call it per
    micro-batch and backward before the next, or the graph keeps every chunk's logits alive.

    Consecutive rows with the same prompt (a GRPO group) run the prompt once and share its KV
    cache, gradients included: with G completions per prompt the prompt costs 1/G as much.
    """
    import torch

    n, c = completion_ids.shape
    if chunk_size is None:
        vocab = int(model.get_output_embeddings().weight.shape[0])
        chunk_size = max(1, LOGITS_BUDGET_ELEMENTS // ((c + 1) * vocab))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    # Checkpointed layers drop the KV cache in a grad-enabled training forward, so share only without it.
    share = not (model.training and torch.is_grad_enabled() and _checkpointing(model))
    parts = []
    for start in range(0, n, chunk_size):
        rows = slice(start, start + chunk_size)
        args = (model, prompt_ids[rows], prompt_mask[rows], completion_ids[rows], completion_mask[rows])
        logits = _shared_prompt_logits(*args) if share else _full_logits(*args)  # [n, C, V]
        logits = logits.float() / temperature
        target = completion_ids[rows].unsqueeze(-1)  # [n, C, 1]
        # gather - logsumexp instead of log_softmax: no second [n, C, V] tensor.
        parts.append(logits.gather(-1, target).squeeze(-1) - torch.logsumexp(logits, dim=-1))  # [n, C]
    return torch.cat(parts, dim=0)


def _full_logits(model: Any, p_ids: Any, p_mask: Any, c_ids: Any, c_mask: Any) -> torch.Tensor:
    """Logits predicting each completion token, from one forward over prompt + completion."""
    import torch

    ids = torch.cat([p_ids, c_ids], dim=1)  # [n, P+C]
    mask = torch.cat([p_mask, c_mask], dim=1).long()  # [n, P+C]
    out = model(
        input_ids=ids, attention_mask=mask, position_ids=positions_from_mask(mask),
        use_cache=False, logits_to_keep=c_ids.shape[1] + 1,
    )
    return out.logits[:, :-1]  # [n, C, V]: position t predicts completion token t


def _shared_prompt_logits(model: Any, p_ids: Any, p_mask: Any, c_ids: Any, c_mask: Any) -> torch.Tensor:
    """Same as `_full_logits`, running each distinct consecutive prompt once and fanning out its cache."""
    import torch
    from transformers import DynamicCache

    key = torch.cat([p_ids, p_mask.to(p_ids.dtype)], dim=1)  # [n, 2P]: same ids and same padding
    _, group_of_row, counts = torch.unique_consecutive(key, dim=0, return_inverse=True, return_counts=True)
    if len(counts) == len(key):
        return _full_logits(model, p_ids, p_mask, c_ids, c_mask)
    first_rows = counts.cumsum(0) - counts  # [B] the first row of each group
    cache = DynamicCache(config=model.config)
    cache_kw = _cache_kwarg(model)
    positions = positions_from_mask(p_mask[first_rows])  # [B, P]
    prompt_out = model(
        input_ids=p_ids[first_rows], attention_mask=p_mask[first_rows], position_ids=positions,
        use_cache=True, logits_to_keep=1, **{cache_kw: cache},
    )
    cache.batch_select_indices(group_of_row)  # differentiable gather: [B, ...] -> [n, ...]
    mask = torch.cat([p_mask, c_mask], dim=1).long()  # [n, P+C]
    out = model(
        input_ids=c_ids, attention_mask=mask, position_ids=positions_from_mask(mask)[:, p_ids.shape[1] :],
        use_cache=True, **{cache_kw: cache},
    )
    first = prompt_out.logits[group_of_row]  # [n, 1, V] predicts completion token 0
    return torch.cat([first, out.logits[:, :-1]], dim=1)  # [n, C, V]


def _checkpointing(model: Any) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) is True for m in model.modules())
