"""The single-GPU path on a real CUDA device: dtype and placement, 4-bit QLoRA, gradient
checkpointing and chunked log-probs in bf16.

Marked `cuda`: skipped where torch sees no GPU (tests/conftest.py), run first by
benchmarks/gpu_check.py (`bash scripts/gpu-check.sh`). The CPU suite checks the same functions in
float32; here the point is what only a GPU shows: bf16 numerics, device placement, bitsandbytes.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dumpcli.config import DataConfig, GRPOConfig, ModelConfig, RunConfig, TrainConfig
from dumpcli.policy import generate, load_policy, per_token_logprobs, render_prompts
from dumpcli.policy.tiny import char_tokenizer

pytestmark = pytest.mark.cuda

# Different lengths, so the batch is left padded.
MESSAGES = [[{"role": "user", "content": f"What is {n} + 3?"}] for n in (1, 12, 12345)]


def tiny(**kw) -> object:
    return load_policy(ModelConfig(name="tiny-random", **kw), seed=0)


def rollout(loaded, groups: int = 4, max_new_tokens: int = 12, seed: int = 0):
    texts = render_prompts(loaded.tokenizer, MESSAGES, ["<think>"] * len(MESSAGES))
    torch.manual_seed(seed)
    return generate(loaded, texts, num_generations=groups, max_new_tokens=max_new_tokens)


def tensors(r) -> tuple[torch.Tensor, ...]:
    return r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask


def small_qwen2_dir(path: Path) -> Path:
    """A 2-layer Qwen2 with random bf16 weights and the character tokenizer, saved as an HF folder.

    Its Linear shapes are multiples of 64, as bitsandbytes' 4-bit blocks want.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = char_tokenizer()
    config = Qwen2Config(
        vocab_size=len(tok), hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_dtype_auto_is_bf16_on_the_gpu_with_every_tensor_there():
    loaded = tiny()  # dtype auto, device auto
    assert loaded.device.type == "cuda" and loaded.dtype == torch.bfloat16
    named = dict(loaded.model.named_parameters())
    assert all(p.device.type == "cuda" for p in named.values())
    assert all(p.dtype == torch.bfloat16 for k, p in named.items() if "lora_" not in k)
    assert all(p.requires_grad == ("lora_" in k) for k, p in named.items())
    r = rollout(loaded)
    assert all(t.device.type == "cuda" for t in tensors(r))
    with torch.no_grad():
        logps = per_token_logprobs(loaded.model, *tensors(r))
    assert logps.device.type == "cuda" and logps.dtype == torch.float32 and torch.isfinite(logps).all()


def test_explicit_float32_on_cuda_stays_float32():
    loaded = tiny(dtype="float32", device="cuda")
    assert loaded.dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.device.type == "cuda" for p in loaded.model.parameters())


def test_chunked_logprobs_match_an_unchunked_reference_in_bf16():
    # One plain forward over prompt + completion, log-softmax over the whole vocabulary: what the
    # chunked, completion-only, shared-prompt computation must reproduce.
    loaded = tiny()
    r = rollout(loaded, groups=4)
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    mask = torch.cat([r.prompt_mask, r.completion_mask], 1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    p = r.prompt_ids.shape[1]
    loaded.model.eval()
    with torch.no_grad():
        logits = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits  # [N, P+C, V]
        reference = torch.log_softmax(logits[:, p - 1 : -1].float(), -1).gather(-1, r.completion_ids[..., None])[..., 0]
        chunks = {size: per_token_logprobs(loaded.model, *tensors(r), chunk_size=size) for size in (1, 5, None)}
    valid = r.completion_mask.bool()
    for size, logps in chunks.items():
        # bf16 matmuls of different shapes round differently; a few hundredths of a nat is bf16's noise.
        torch.testing.assert_close(logps[valid], reference[valid], rtol=0.0, atol=0.1, msg=f"chunk_size={size}")
        assert (logps[valid] - reference[valid]).abs().mean() < 0.02, size


def test_chunked_logprobs_match_the_reference_in_float32():
    loaded = tiny(dtype="float32")
    r = rollout(loaded, groups=4)
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    mask = torch.cat([r.prompt_mask, r.completion_mask], 1)
    p = r.prompt_ids.shape[1]
    loaded.model.eval()
    with torch.no_grad():
        logits = loaded.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits
        reference = torch.log_softmax(logits[:, p - 1 : -1], -1).gather(-1, r.completion_ids[..., None])[..., 0]
        chunked = per_token_logprobs(loaded.model, *tensors(r), chunk_size=3)
    valid = r.completion_mask.bool()
    # TF32 may be on for matmuls: a little looser than the CPU suite's 1e-4.
    torch.testing.assert_close(chunked[valid], reference[valid], rtol=1e-3, atol=2e-3)


def lora_loss_and_grads(loaded, r) -> tuple[float, dict[str, torch.Tensor]]:
    loaded.model.train()
    advantages = torch.linspace(-1, 1, r.completion_ids.shape[0], device=loaded.device)[:, None]  # [N, 1]
    logps = per_token_logprobs(loaded.model, *tensors(r))
    loss = -(logps * advantages * r.completion_mask).sum() / r.completion_mask.sum()
    loss.backward()
    grads = {k: p.grad.float().clone() for k, p in loaded.model.named_parameters() if p.grad is not None}
    return float(loss.detach()), grads


def test_gradient_checkpointing_gives_the_same_loss_and_gradients_in_bf16():
    r = rollout(tiny(), groups=2)
    loss, grads = lora_loss_and_grads(tiny(), r)
    loss_ckpt, grads_ckpt = lora_loss_and_grads(tiny(gradient_checkpointing=True), r)
    assert grads.keys() == grads_ckpt.keys() and any("lora_A" in k for k in grads)
    assert math.isclose(loss, loss_ckpt, rel_tol=2e-2, abs_tol=1e-3)
    for k in grads:
        diff = (grads[k] - grads_ckpt[k]).norm()
        assert diff <= 5e-2 * grads[k].norm() + 1e-6, k  # bf16: same direction and size, not bit-equal


def test_four_bit_load_and_one_qlora_step(tmp_path: Path, make_ladder) -> None:
    bnb = pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (pip install 'dumpcli[qlora]')")
    from dumpcli.train.setup import build_trainer

    cfg = TrainConfig(
        model=ModelConfig(name=str(small_qwen2_dir(tmp_path / "qwen2")), load_in_4bit=True, lora_r=8, lora_alpha=16),
        data=DataConfig(path=str(make_ladder(seed=3, lengths="1-2", train=12, test=2))),
        grpo=GRPOConfig(steps=1, batch_size=2, num_generations=4, max_new_tokens=6),
        run=RunConfig(out=str(tmp_path / "run"), eval_at_start=False, progress=False),
    )
    trainer = build_trainer(cfg)
    model = trainer.loaded.model
    four_bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == 2 * 7  # q/k/v/o/gate/up/down of both layers
    assert trainer.loaded.device.type == "cuda" and trainer.loaded.dtype == torch.bfloat16
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in k for k in trainable)

    metrics = trainer.train_step()
    assert math.isfinite(metrics["loss"]) and math.isfinite(metrics["grad_norm"])
    assert metrics["completions/mean_length"] > 0

    # The step's advantages may all be zero (equal rewards): check separately that gradients flow
    # through the 4-bit base into the LoRA weights.
    model.zero_grad(set_to_none=True)
    texts = render_prompts(trainer.loaded.tokenizer, MESSAGES, [""] * len(MESSAGES))
    r = generate(trainer.loaded, texts, num_generations=2, max_new_tokens=6)
    model.train()
    logps = per_token_logprobs(model, *tensors(r))
    (-(logps * r.completion_mask).sum()).backward()
    grads = [p.grad for k, p in model.named_parameters() if "lora_B" in k]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
