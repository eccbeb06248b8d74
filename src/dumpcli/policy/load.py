"""The policy model: load it (built-in, local folder or hub id), wrap it in LoRA, save adapters.

    from dumpcli.config import ModelConfig
    from dumpcli.policy import load_policy, render_prompts, generate, per_token_logprobs
    loaded = load_policy(ModelConfig(name="tiny-random", lora=False), seed=0)
    texts = render_prompts(loaded.tokenizer, [[{"role": "user", "content": "2+2="}]], [""])
    rollout = generate(loaded, texts, num_generations=4, max_new_tokens=8)

torch / transformers / peft are imported inside the functions: importing this module is cheap.
Rollouts and log-probs live in `dumpcli.policy.generation`; the config (`ModelConfig`) in `dumpcli.config`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dumpcli.config import ModelConfig
from dumpcli.errors import DumpError
from dumpcli.policy.generation import Rollout, generate, per_token_logprobs
from dumpcli.policy.sources import BUILTIN_MODELS, ensure_smollm2_cache, resolve_source, smollm2_cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "BUILTIN_MODELS",
    "default_lora_targets",
    "LoadedModel",
    "Rollout",
    "generate",
    "load_adapter_weights",
    "load_policy",
    "per_token_logprobs",
    "reference_adapter_disabled",
    "render_prompts",
    "save_adapter",
    "smollm2_cache_dir",
]

# Attention projections: the LoRA targets of the LoRA paper and of most GRPO+LoRA recipes.
ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]
ATTENTION_PROJ_MODEL_TYPES = {"llama", "qwen2", "qwen3", "mistral", "smollm3", "gemma", "gemma2", "phi3"}


@dataclass
class LoadedModel:
    model: Any  # PeftModel when cfg.lora, else the PreTrainedModel; in train mode
    tokenizer: Any  # PreTrainedTokenizerBase; pad token set, left padding
    device: torch.device
    dtype: torch.dtype


def load_policy(cfg: ModelConfig, seed: int) -> LoadedModel:
    """Load the policy named by `cfg`, wrap it in LoRA when asked, and put it in train mode.

    Weights that are random (tiny-random, LoRA's A matrices) depend only on `seed`; the global
    torch RNG is left as it was.
    """
    cfg.validate()
    device = _resolve_device(cfg.device)
    if cfg.load_in_4bit:
        _check_4bit_possible(device, cfg.name)
    dtype = _resolve_dtype(cfg.dtype, device)
    model, tokenizer = _load_base(cfg, device, dtype, seed)
    _prepare_tokenizer(tokenizer, cfg.name)
    if cfg.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):  # the name since transformers 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.lora:
        from dumpcli.policy.tiny import isolated_seed

        with isolated_seed(seed):
            model = _wrap_lora(model, cfg)
    if not cfg.load_in_4bit:
        model.to(device)
    model.train()
    return LoadedModel(model=model, tokenizer=tokenizer, device=device, dtype=dtype)


def _resolve_device(device: str) -> torch.device:
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise DumpError("device cuda asked for but torch sees no CUDA GPU; use --set model.device=cpu or auto")
    return torch.device(device)


def _resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def _check_4bit_possible(device: torch.device, name: str) -> None:
    # Checked before bitsandbytes is imported: on CPU its import alone can warn or fail.
    if device.type != "cuda":
        raise DumpError("4-bit QLoRA needs a CUDA GPU; drop --load-in-4bit on CPU")
    if name == "tiny-random":
        raise DumpError("tiny-random is built in memory and cannot be loaded in 4 bits; drop --load-in-4bit")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise DumpError("--load-in-4bit needs bitsandbytes; install it with: pip install 'dumpcli[qlora]'")


def _load_base(cfg: ModelConfig, device: torch.device, dtype: torch.dtype, seed: int) -> tuple[Any, Any]:
    if cfg.name == "tiny-random":
        from dumpcli.policy.tiny import char_tokenizer, tiny_llama

        tokenizer = char_tokenizer()
        model = tiny_llama(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, seed)
        return model.to(dtype), tokenizer
    if cfg.name == "smollm2-135m":
        source, kwargs = str(ensure_smollm2_cache()), {}
    else:
        source, kwargs = resolve_source(cfg.name)
    return _from_pretrained(source, kwargs, cfg, device, dtype)


def _from_pretrained(
    source: str, kwargs: dict[str, Any], cfg: ModelConfig, device: torch.device, dtype: torch.dtype
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_kwargs: dict[str, Any] = {"dtype": dtype, **kwargs}
    if cfg.load_in_4bit:
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=dtype,
            bnb_4bit_use_double_quant=True,
        )
        model_kwargs["device_map"] = {"": device.index or 0}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
    except (OSError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DumpError(f"cannot load model {cfg.name!r}: {first_line}") from e
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return model, tokenizer


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase, name: str) -> None:
    if tokenizer.eos_token_id is None:
        raise DumpError(f"the tokenizer of {name!r} has no EOS token, so completions could never end")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"


def default_lora_targets(model: PreTrainedModel) -> list[str]:
    """q/k/v/o_proj for the Llama family; otherwise every Linear named *proj (never lm_head)."""
    import torch

    if getattr(model.config, "model_type", None) in ATTENTION_PROJ_MODEL_TYPES:
        return list(ATTENTION_PROJECTIONS)
    names = {
        full.rsplit(".", 1)[-1]
        for full, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and full.endswith("proj") and "lm_head" not in full
    }
    if not names:
        raise DumpError(
            f"no default LoRA targets for model type {model.config.model_type!r}; pass them with --set model.lora_target_modules=q_proj,v_proj"
        )
    return sorted(names)


def _wrap_lora(model: PreTrainedModel, cfg: ModelConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    targets = cfg.lora_target_modules or default_lora_targets(model)
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():
            # peft reads transformers' deprecated `is_gradient_checkpointing`: noise on every run.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, lora)
    except ValueError as e:
        raise DumpError(f"LoRA target modules {targets} do not match model {cfg.name!r}: {str(e).splitlines()[0]}") from e


def _is_peft(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def render_prompts(tokenizer: Any, prompts: list[list[dict[str, str]]], prefills: list[str]) -> list[str]:
    """Prompt texts ready to tokenize: chat template (with generation prompt) + prefill.

    Without a chat template the message contents are joined with a blank line and end in a
    newline. A plain-string prompt counts as one user message.
    """
    if len(prompts) != len(prefills):
        raise ValueError(f"{len(prompts)} prompts but {len(prefills)} prefills")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    texts = []
    for messages, prefill in zip(prompts, prefills):
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        if has_template:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        texts.append(text + prefill)
    return texts


@contextlib.contextmanager
def reference_adapter_disabled(model: Any) -> Iterator[None]:
    """Within this block the LoRA-wrapped policy computes exactly the frozen base model."""
    if not _is_peft(model):
        raise DumpError(
            "a KL penalty needs the frozen reference, which dump gets by switching the LoRA adapter off; "
            "with LoRA off (full fine-tune) set the KL coefficient to 0"
        )
    with model.disable_adapter():
        yield


def save_adapter(model: Any, path: Path | str) -> None:
    """PEFT adapter files (adapter_config.json + adapter_model.safetensors) or, without LoRA,
    the full model in HF format. The caller makes the folder atomic (checkpoints are renamed)."""
    model.save_pretrained(str(path))


def load_adapter_weights(model: Any, path: Path | str) -> None:
    """Load weights written by `save_adapter` into `model` in place (same architecture and rank)."""
    path = Path(path)
    if not path.is_dir():
        raise DumpError(f"checkpoint folder {path} does not exist")
    try:
        if _is_peft(model):
            _load_lora(model, path)
        else:
            _load_full(model, path)
    except (RuntimeError, OSError, ValueError) as e:  # size mismatch (another rank or model), unreadable files
        raise DumpError(f"weights in {path} do not fit this model: {str(e).strip().splitlines()[0]}") from e


def _load_lora(model: Any, path: Path) -> None:
    from peft.utils import load_peft_weights, set_peft_model_state_dict

    if not (path / "adapter_config.json").exists():
        raise DumpError(f"{path} has no LoRA adapter (adapter_config.json); was it saved with LoRA off?")
    result = set_peft_model_state_dict(model, load_peft_weights(str(path), device=str(_device_of(model))))
    missing_lora = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing_lora:
        raise DumpError(f"adapter in {path} does not match this model's LoRA layers (different targets?)")


def _load_full(model: Any, path: Path) -> None:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise DumpError(f"{path} has no model weights (*.safetensors); was it saved with LoRA on?")
    state: dict[str, Any] = {}
    for f in files:
        state.update(load_file(str(f), device=str(_device_of(model))))
    result = model.load_state_dict(state, strict=False)
    # Tied weights (lm_head = embeddings) are saved once; any other missing key is a real mismatch.
    loaded_ptrs = {p.data_ptr() for k, p in model.state_dict().items() if k in state}
    own = model.state_dict()
    untied_missing = [k for k in result.missing_keys if own[k].data_ptr() not in loaded_ptrs]
    if result.unexpected_keys or untied_missing:
        raise DumpError(f"weights in {path} do not match this model (missing {untied_missing[:3]})")


def _device_of(model: Any) -> torch.device:
    return next(model.parameters()).device
