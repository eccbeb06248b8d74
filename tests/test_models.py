"""The model layer on real models: tiny-random end to end, SmolLM2 from the cache when present."""

from __future__ import annotations

import string
import time
from pathlib import Path

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dumpcli.errors import DumpError
from dumpcli.config import ModelConfig
from dumpcli.policy import (
    default_lora_targets,
    generate,
    load_adapter_weights,
    load_policy,
    per_token_logprobs,
    reference_adapter_disabled,
    render_prompts,
    save_adapter,
)
from dumpcli.policy.tiny import char_tokenizer

# Different lengths, so the batch is left padded.
MESSAGES = [[{"role": "user", "content": f"What is {n} + 3?"}] for n in (1, 12, 12345)]


def tiny(lora: bool = True, seed: int = 0, **kw):
    return load_policy(ModelConfig(name="tiny-random", lora=lora, **kw), seed=seed)


def rollout(loaded, groups: int = 4, max_new_tokens: int = 10, seed: int = 0):
    texts = render_prompts(loaded.tokenizer, MESSAGES, ["<think>"] * len(MESSAGES))
    torch.manual_seed(seed)
    return generate(loaded, texts, num_generations=groups, max_new_tokens=max_new_tokens)


def logprobs(loaded, r, **kw):
    return per_token_logprobs(loaded.model, r.prompt_ids, r.prompt_mask, r.completion_ids, r.completion_mask, **kw)


# --- tiny-random and its tokenizer ---------------------------------------------------------


def test_tiny_random_weights_depend_only_on_seed():
    a, b, c = tiny(lora=False, seed=1), tiny(lora=False, seed=1), tiny(lora=False, seed=2)
    pa, pb, pc = (dict(m.model.named_parameters()) for m in (a, b, c))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert not torch.equal(pa["model.layers.0.self_attn.q_proj.weight"], pc["model.layers.0.self_attn.q_proj.weight"])


def test_loading_leaves_the_global_rng_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(lora=True, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_lora_init_depends_only_on_seed():
    a, b = tiny(seed=3), tiny(seed=3)
    la = {k: v for k, v in a.model.named_parameters() if "lora_A" in k}
    lb = dict(b.model.named_parameters())
    assert la and all(torch.equal(v, lb[k]) for k, v in la.items())


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=string.printable, max_size=80))
@example("<eos> <pad> <unk> <|im_end|>")
def test_char_tokenizer_round_trips_printable_text(text):
    tok = char_tokenizer()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tok.decode(ids) == text


def test_char_tokenizer_has_special_tokens_and_no_chat_template():
    tok = char_tokenizer()
    assert len({tok.pad_token_id, tok.eos_token_id, tok.unk_token_id}) == 3
    assert tok.chat_template is None
    ids = tok("a b", add_special_tokens=False)["input_ids"] + [tok.eos_token_id, tok.pad_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == "a b"


def test_tiny_random_has_a_few_million_parameters():
    n = sum(p.numel() for p in tiny(lora=False).model.parameters())
    assert 1_000_000 < n < 10_000_000


# --- prompts -------------------------------------------------------------------------------


def test_render_prompts_without_chat_template_joins_contents():
    tok = char_tokenizer()
    msgs = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]]
    assert render_prompts(tok, msgs, ["<think>"]) == ["Be brief.\n\n2+2?\n<think>"]


def test_render_prompts_uses_the_chat_template_with_generation_prompt():
    tok = char_tokenizer()
    tok.chat_template = (
        "{% for m in messages %}[{{ m['role'] }}]{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    assert render_prompts(tok, [[{"role": "user", "content": "hi"}]], ["<think>"]) == ["[user]hi[assistant]<think>"]


# --- generation ----------------------------------------------------------------------------


def test_generate_returns_grouped_rows_with_left_padded_prompts():
    loaded = tiny()
    r = rollout(loaded, groups=4, max_new_tokens=10)
    n = len(MESSAGES) * 4
    assert r.prompt_ids.shape[0] == r.prompt_mask.shape[0] == n
    assert r.completion_ids.shape == r.completion_mask.shape == (n, 10)
    assert len(r.texts) == n
    for i in range(len(MESSAGES)):
        group = r.prompt_ids[i * 4 : (i + 1) * 4]
        assert (group == group[0]).all()
    assert not torch.equal(r.prompt_ids[0], r.prompt_ids[4])
    # left padding: the mask of the shorter prompt starts with zeros, every prompt ends attended
    assert (r.prompt_mask[:, -1] == 1).all()


def eos_boost(loaded, boost: float = 2.0):
    """Make EOS common by adding to its logit: a real change to the model's output layer."""
    eos = loaded.tokenizer.eos_token_id

    def hook(_module, _inputs, output):
        output = output.clone()
        output[..., eos] += boost
        return output

    return loaded.model.get_output_embeddings().register_forward_hook(hook)


def test_completion_mask_ends_at_the_first_eos():
    loaded = tiny()
    eos_boost(loaded)
    r = rollout(loaded, groups=8, max_new_tokens=12)
    eos = loaded.tokenizer.eos_token_id
    ended = 0
    for ids, mask in zip(r.completion_ids.tolist(), r.completion_mask.tolist()):
        if eos in ids:
            first = ids.index(eos)
            ended += 1
            assert mask == [1] * (first + 1) + [0] * (len(ids) - first - 1)
            assert all(t == loaded.tokenizer.pad_token_id for t in ids[first + 1 :])
        else:
            assert all(mask)
    assert 0 < ended < len(r.texts)


def test_texts_are_the_decoded_tokens_before_eos():
    loaded = tiny()
    eos_boost(loaded)
    r = rollout(loaded, groups=8, max_new_tokens=12)
    for ids, mask, text in zip(r.completion_ids, r.completion_mask, r.texts):
        kept = ids[mask.bool()].tolist()
        assert text == loaded.tokenizer.decode(kept, skip_special_tokens=True)
        assert loaded.tokenizer.eos_token not in text and loaded.tokenizer.pad_token not in text


def test_generate_is_reproducible_from_the_global_rng():
    loaded = tiny()
    a, b = rollout(loaded, seed=5), rollout(loaded, seed=5)
    assert torch.equal(a.completion_ids, b.completion_ids)
    assert not torch.equal(a.completion_ids, rollout(loaded, seed=6).completion_ids)


def test_greedy_generation_gives_identical_completions_within_a_group():
    loaded = tiny()
    texts = render_prompts(loaded.tokenizer, MESSAGES, [""] * len(MESSAGES))
    r = generate(loaded, texts, num_generations=3, max_new_tokens=6, greedy=True)
    assert torch.equal(r.completion_ids[0], r.completion_ids[1])


def test_generate_restores_train_mode():
    loaded = tiny()
    rollout(loaded)
    assert loaded.model.training


# --- log-probs -----------------------------------------------------------------------------


def test_logprobs_chunked_equal_unchunked():
    loaded = tiny()
    r = rollout(loaded)
    with torch.no_grad():
        whole = logprobs(loaded, r, chunk_size=1000)
        chunked = logprobs(loaded, r, chunk_size=5)
    assert whole.shape == r.completion_ids.shape and whole.dtype == torch.float32
    torch.testing.assert_close(chunked, whole)


def test_logprobs_equal_a_direct_full_logits_computation():
    loaded = tiny()
    r = rollout(loaded)
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    mask = torch.cat([r.prompt_mask, r.completion_mask], 1)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    p = r.prompt_ids.shape[1]
    with torch.no_grad():
        full = loaded.model(input_ids=ids, attention_mask=mask, position_ids=positions).logits  # [N, P+C, V]
        direct = torch.log_softmax(full[:, p - 1 : -1].float(), -1).gather(-1, r.completion_ids[..., None])[..., 0]
        ours = logprobs(loaded, r)
    torch.testing.assert_close(ours, direct, rtol=1e-4, atol=1e-4)


def test_logprobs_do_not_depend_on_left_padding():
    loaded = tiny()
    r = rollout(loaded)
    short = int(r.prompt_mask.sum(1).argmin())
    keep = r.prompt_mask[short].bool()
    with torch.no_grad():
        padded = logprobs(loaded, r)[short]
        alone = per_token_logprobs(
            loaded.model, r.prompt_ids[short : short + 1, keep], r.prompt_mask[short : short + 1, keep],
            r.completion_ids[short : short + 1], r.completion_mask[short : short + 1],
        )[0]
    assert not keep.all()
    valid = r.completion_mask[short].bool()
    torch.testing.assert_close(padded[valid], alone[valid], rtol=1e-4, atol=1e-4)


def test_gradients_reach_lora_parameters_only():
    loaded = tiny()
    r = rollout(loaded)
    (-(logprobs(loaded, r) * r.completion_mask).sum()).backward()
    named = dict(loaded.model.named_parameters())
    with_grad = {k for k, p in named.items() if p.grad is not None}
    assert with_grad and all("lora_" in k for k in with_grad)
    assert any(named[k].grad.abs().sum() > 0 for k in with_grad if "lora_B" in k)
    assert all(not p.requires_grad for k, p in named.items() if "lora_" not in k)


def test_full_fine_tune_trains_every_parameter():
    loaded = tiny(lora=False)
    assert all(p.requires_grad for p in loaded.model.parameters())
    r = rollout(loaded)
    (-(logprobs(loaded, r) * r.completion_mask).sum()).backward()
    assert loaded.model.get_input_embeddings().weight.grad is not None


def sgd_step(loaded, r, lr: float = 0.5) -> None:
    params = [p for p in loaded.model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    (-(logprobs(loaded, r) * r.completion_mask).sum()).backward()
    opt.step()
    opt.zero_grad()


def test_reference_adapter_disabled_gives_the_base_model():
    loaded = tiny()
    r = rollout(loaded)
    with torch.no_grad():
        before = logprobs(loaded, r)
        with reference_adapter_disabled(loaded.model):
            torch.testing.assert_close(logprobs(loaded, r), before)  # LoRA B starts at zero
    sgd_step(loaded, r)
    with torch.no_grad():
        after = logprobs(loaded, r)
        with reference_adapter_disabled(loaded.model):
            reference = logprobs(loaded, r)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(reference, before)


def test_reference_without_lora_is_a_dump_error():
    loaded = tiny(lora=False)
    with pytest.raises(DumpError, match="KL"):
        with reference_adapter_disabled(loaded.model):
            pass


# --- saving and loading --------------------------------------------------------------------


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_saved_weights_load_back_into_a_fresh_model(tmp_path: Path, lora: bool):
    trained = tiny(lora=lora)
    r = rollout(trained)
    sgd_step(trained, r)
    save_adapter(trained.model, tmp_path / "ckpt")
    fresh = tiny(lora=lora)
    with torch.no_grad():
        assert not torch.allclose(logprobs(fresh, r), logprobs(trained, r))
        load_adapter_weights(fresh.model, tmp_path / "ckpt")
        torch.testing.assert_close(logprobs(fresh, r), logprobs(trained, r))


def test_loading_an_adapter_of_another_rank_is_a_dump_error(tmp_path: Path):
    save_adapter(tiny(lora_r=4).model, tmp_path / "r4")
    with pytest.raises(DumpError, match="do not fit|does not match"):
        load_adapter_weights(tiny(lora_r=8).model, tmp_path / "r4")


def test_loading_a_full_checkpoint_into_a_lora_model_is_a_dump_error(tmp_path: Path):
    save_adapter(tiny(lora=False).model, tmp_path / "full")
    with pytest.raises(DumpError, match="no LoRA adapter"):
        load_adapter_weights(tiny().model, tmp_path / "full")


# --- LoRA targets --------------------------------------------------------------------------


def test_llama_gets_attention_projection_targets():
    loaded = tiny()
    assert default_lora_targets(loaded.model.get_base_model()) == ["q_proj", "k_proj", "v_proj", "o_proj"]
    parts = [k.split(".") for k, _ in loaded.model.named_parameters() if "lora_A" in k]
    assert {p[p.index("lora_A") - 1] for p in parts} == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_other_architectures_fall_back_to_every_proj_linear():
    from transformers import OPTConfig, OPTForCausalLM

    model = OPTForCausalLM(OPTConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, ffn_dim=32,
                                     num_attention_heads=2, word_embed_proj_dim=16))
    assert default_lora_targets(model) == ["k_proj", "out_proj", "q_proj", "v_proj"]


# --- user errors ---------------------------------------------------------------------------


def test_missing_model_path_is_a_dump_error(tmp_path: Path):
    with pytest.raises(DumpError, match="does not exist"):
        load_policy(ModelConfig(name=str(tmp_path / "nope")), seed=0)


def test_folder_without_config_is_a_dump_error(tmp_path: Path):
    with pytest.raises(DumpError, match="no config.json"):
        load_policy(ModelConfig(name=str(tmp_path)), seed=0)


def test_hub_id_in_offline_mode_is_a_dump_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DumpError, match="cannot be reached"):
        load_policy(ModelConfig(name="dump-tests/no-such-model"), seed=0)


def test_unknown_hub_id_fails_fast_without_retries(monkeypatch):
    # Offline here: the reachability probe fails at once; online (CI), the hub answers 404.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.monotonic()
    with pytest.raises(DumpError, match="cannot be reached|cannot load"):
        load_policy(ModelConfig(name="dump-tests/no-such-model"), seed=0)
    assert time.monotonic() - start < 15


def test_four_bit_on_cpu_is_a_dump_error():
    with pytest.raises(DumpError, match="CUDA"):
        load_policy(ModelConfig(name="tiny-random", load_in_4bit=True, device="cpu"), seed=0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("dtype", "fp8", "dtype"), ("device", "tpu", "device"), ("lora_r", 0, "lora_r"), ("lora_dropout", 1.0, "dropout")],
)
def test_bad_config_values_are_dump_errors(field: str, value, message: str):
    with pytest.raises(DumpError, match=message):
        load_policy(ModelConfig(name="tiny-random", **{field: value}), seed=0)


def lora_grads(loaded, r, **kw) -> dict[str, torch.Tensor]:
    loaded.model.zero_grad()
    sgd_step(loaded, r, lr=0.1)  # one step so that LoRA B is non-zero and A gets gradients too
    loaded.model.zero_grad()
    (-(logprobs(loaded, r, **kw) * r.completion_mask).sum()).backward()
    return {k: p.grad.clone() for k, p in loaded.model.named_parameters() if p.grad is not None}


def test_shared_prompt_gradients_equal_per_row_gradients():
    # chunk_size=1 puts every row in its own chunk, so nothing is shared: the plain full forward.
    r = rollout(tiny(), groups=2, max_new_tokens=6)
    shared, per_row = lora_grads(tiny(), r), lora_grads(tiny(), r, chunk_size=1)
    assert shared.keys() == per_row.keys() and any("lora_A" in k for k in shared)
    for k in shared:
        torch.testing.assert_close(shared[k], per_row[k], rtol=1e-3, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    r = rollout(tiny(), groups=2, max_new_tokens=6)
    plain, checkpointed = lora_grads(tiny(), r), lora_grads(tiny(gradient_checkpointing=True), r)
    for k in plain:
        torch.testing.assert_close(checkpointed[k], plain[k], rtol=1e-3, atol=1e-5)


def test_a_local_hf_folder_loads_by_path(tmp_path: Path):
    source = tiny(lora=False, seed=4)
    source.model.save_pretrained(tmp_path / "m")
    source.tokenizer.save_pretrained(tmp_path / "m")
    loaded = load_policy(ModelConfig(name=str(tmp_path / "m"), lora=False), seed=0)
    assert loaded.tokenizer.decode(loaded.tokenizer("a\nb c")["input_ids"]) == "a\nb c"
    r = rollout(source)
    with torch.no_grad():
        torch.testing.assert_close(logprobs(loaded, r), logprobs(source, r))


def test_cached_greedy_generation_matches_a_full_forward():
    # The KV-cache sampler (prefill once, cache fanned out per group, left padding) must see the
    # same logits as one forward over prompt + completion: greedy tokens are their argmax.
    loaded = tiny()
    texts = render_prompts(loaded.tokenizer, MESSAGES, [""] * len(MESSAGES))
    r = generate(loaded, texts, num_generations=2, max_new_tokens=8, greedy=True)
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    mask = torch.cat([r.prompt_mask, r.completion_mask], 1)
    with torch.no_grad():
        logits = loaded.model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits
    predicted = logits[:, r.prompt_ids.shape[1] - 1 : -1].argmax(-1)  # [N, C]
    valid = r.completion_mask.bool()
    assert torch.equal(predicted[valid], r.completion_ids[valid])


def test_top_p_samples_only_from_the_nucleus():
    from dumpcli.policy.generation import pick_tokens

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).repeat(2000, 1)
    torch.manual_seed(0)
    drawn = pick_tokens(logits, temperature=1.0, top_p=0.7, greedy=False)
    assert set(drawn.tolist()) == {0, 1}
