"""Warm-start tiny-random with a short supervised pass on the easy levels of a dataset, cached.

The curriculum test bed needs a model that, at GRPO step 0, has some distributions solved, some
half-learned and some out of reach, as Qwen-7B has on K&K 3..14. A random model has nothing
solved; a few hundred supervised steps on the short levels give exactly that spread.

    .venv/bin/python benchmarks/warm_start.py DATA --levels reverse-1,reverse-2 --steps 300 --out DIR

The result is an HF folder (model + character tokenizer) that `dump train --model DIR` loads. It
is deterministic in its arguments and cached under $DUMP_CACHE/models/tiny-warm-<hash>.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dumpcli.errors import DumpError
from dumpcli.fsutil import atomic_dir, cache_root


@dataclass(frozen=True)
class WarmStart:
    data: str  # dataset dir (a `dump prepare` output)
    levels: tuple[str, ...]  # distributions to learn from
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0

    def key(self, fingerprint: str) -> str:
        spec = {**asdict(self), "data": fingerprint}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


def warm_start(spec: WarmStart, threads: int = 1, log: Any = None) -> Path:
    """The warm-started model folder, trained now unless cached."""
    from dumpcli.data.dataset import load_dataset_dir

    dataset = load_dataset_dir(spec.data)
    final = cache_root() / "models" / f"tiny-warm-{spec.key(dataset.fingerprint())}"
    if (final / "config.json").exists():
        return final
    missing = [name for name in spec.levels if name not in dataset.names]
    if missing:
        raise DumpError(f"{spec.data} has no distribution {missing[0]!r}; it has: {', '.join(dataset.names)}")
    rows = [r for r in dataset.rows("train") if r["distribution"] in spec.levels]
    with atomic_dir(final, overwrite=True) as tmp:
        _train(spec, rows, tmp, threads, log)
    return final


def _train(spec: WarmStart, rows: list[dict[str, Any]], out: Path, threads: int, log: Any) -> None:
    import numpy as np
    import torch

    from dumpcli.config import ModelConfig
    from dumpcli.policy import load_policy, render_prompts

    torch.set_num_threads(threads)
    torch.manual_seed(spec.seed)
    loaded = load_policy(ModelConfig(name="tiny-random", lora=False), spec.seed)
    model, tok = loaded.model, loaded.tokenizer
    prompts = render_prompts(tok, [r["prompt"] for r in rows], [r["prefill"] for r in rows])
    targets = [r["answer"] + tok.eos_token for r in rows]
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr)
    rng = np.random.default_rng(spec.seed)
    model.train()
    for step in range(spec.steps):
        pick = rng.integers(len(rows), size=spec.batch_size)
        ids, labels = _teacher_forcing_batch(tok, [prompts[i] for i in pick], [targets[i] for i in pick])
        loss = model(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long(), labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if log is not None and (step + 1) % 50 == 0:
            log(f"warm start step {step + 1}/{spec.steps} loss {loss.item():.3f}")
    from dumpcli.train.setup import hf_progress_bars_off

    with hf_progress_bars_off():
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))
    (out / "warm_start.json").write_text(json.dumps(asdict(spec), indent=2) + "\n")


def _teacher_forcing_batch(tok: Any, prompts: list[str], targets: list[str]) -> tuple[Any, Any]:
    """Right-padded prompt+target ids [B, T] and labels that score only the target tokens."""
    import torch

    seqs, labels = [], []
    for prompt, target in zip(prompts, targets):
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        t = tok(target, add_special_tokens=False)["input_ids"]
        seqs.append(p + t)
        labels.append([-100] * len(p) + t)
    width = max(map(len, seqs))
    ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    return ids, lab


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="dataset dir")
    parser.add_argument("--levels", required=True, help="comma-separated distributions to learn from")
    parser.add_argument("--steps", type=int, default=WarmStart.steps)
    parser.add_argument("--batch-size", type=int, default=WarmStart.batch_size)
    parser.add_argument("--lr", type=float, default=WarmStart.lr)
    parser.add_argument("--seed", type=int, default=WarmStart.seed)
    args = parser.parse_args(argv)
    spec = WarmStart(args.data, tuple(args.levels.split(",")), args.steps, args.batch_size, args.lr, args.seed)
    try:
        print(warm_start(spec, log=lambda m: print(m, file=sys.stderr)))
    except DumpError as e:
        print(f"warm_start: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
