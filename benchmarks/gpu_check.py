"""The single-GPU path, measured: one unattended check that writes one JSON report and a short table.

    bash scripts/gpu-check.sh --out DIR                                   # on a GPU machine (see benchmarks/GPU.md)
    .venv/bin/python benchmarks/gpu_check.py --smoke --out bench/gpu-smoke   # the same code on CPU, tiny (CI runs it)

Stages, all inside one time budget (--budget-s; the report is rewritten after every stage, so a
run cut short still leaves a valid, partial report with "complete": false):

1. tests: `pytest -m cuda tests/test_cuda.py` (bf16 placement, 4-bit load + a QLoRA step, gradient
   checkpointing, chunked log-probs against an unchunked reference). Skipped, with the reason, on CPU.
2. prepare (one process): a Knights-and-Knaves dataset (5 people, as `dump prepare kk` makes it) and,
   per model config in benchmarks/gpu_models/ (the Qwen2.5-0.5B / 1.5B architectures with their real
   151,936-token vocabulary, or a tiny Qwen2 with --smoke), an HF folder with random bf16 weights and a
   word-level tokenizer over the dataset's words. Nothing is downloaded.
3. runs: per model x mode x side, a fresh process (so each peak memory is its own) trains one warm-up
   step and --steps timed steps, with benchmarks/grpo_compare.py (the code step_time.py uses too).
   Modes: `lora` (bf16 LoRA), `lora-gc` (+ gradient checkpointing), `qlora` (4-bit NF4 base, LoRA,
   gradient checkpointing). Sides: `ours` (dump's trainer) and `trl` (TRL's GRPOTrainer on the same
   PeftModel, data and step shape).

The step is examples/configs/kk-gpu.yaml's: LoRA r 32 / alpha 64 on q/k/v/o, 8 prompts x 8 completions
x 512 new tokens, micro-batch 16, its learning rate and clipping; with two changes, for both sides:
beta 0 (TRL computes the reference log-probs inside its generation phase, dump inside its update, so
with a KL term the generation/update split would not compare) and no early stop: the tokenizer's EOS
id is the model's vocabulary size, an id the model cannot sample, so every completion is exactly 512
tokens long on both sides. --smoke shrinks the step to 2 x 2 x 8 on one thread.

Per run the report gives seconds per step split into generation and update (update = step minus
generation: log-probs, loss, backward, optimizer, plus rewards, which take milliseconds), generated
tokens per second, peak memory (GPU: torch.cuda.max_memory_allocated over the whole process, model
load included; CPU: peak RSS) and the update's model FLOPs utilisation,

    MFU = 6 * N * T / update_s / peak,   N = base model parameters (tied embedding counted once),
    T = completions x (mean prompt tokens + mean completion tokens),

against the card's dense bf16 peak (BF16_PEAK_TFLOPS; null for a card not in the table or on CPU).
6·N·T is the usual forward + backward count of a full fine-tune, kept for LoRA too (the frozen
weights' gradient matmuls are skipped, so ~4·N·T is done; checkpointing recomputes ~2·N·T more):
the same formula for both sides, so their MFU ratio is their update-time ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS_DIR = REPO / "benchmarks" / "gpu_models"
GPU_CONFIG = REPO / "examples" / "configs" / "kk-gpu.yaml"
REPORT, TABLE, LOG = "gpu-check.json", "gpu-check.md", "gpu-check.log"
FORMAT_VERSION = 1

GPU_MODELS = ["qwen2.5-1.5b", "qwen2.5-0.5b"]  # most important first: the budget may cut the tail
SMOKE_MODELS = ["smoke-qwen2"]
MODES = ["lora-gc", "qlora", "lora"]
SIDES = ["ours", "trl"]
QLORA_TARGET_MODEL = "qwen2.5-1.5b"  # QLoRA's peak memory target: at most 0.5x bf16 LoRA's, on this model
SMOKE_SHAPE = {"batch_size": 2, "num_generations": 2, "max_new_tokens": 8, "micro_batch_size": 4}
KK_PEOPLE, KK_TRAIN = 5, 32

# Dense (no sparsity) bf16 tensor-core peaks from NVIDIA's data sheets, TFLOP/s; matched against
# torch.cuda.get_device_name() in order, first hit wins.
BF16_PEAK_TFLOPS = [
    ("H200", 989.4),
    ("H100 NVL", 835.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
]


def bf16_peak_tflops(device_name: str | None) -> float | None:
    if not device_name:
        return None
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in device_name), None)


# ------------------------------------------------------------------ children (fresh processes)


def word_tokenizer(texts: list[str], max_size: int, eos_id: int) -> Any:
    """A word-level fast tokenizer over `texts`: K&K prompts get about as many tokens as a BPE
    vocabulary gives them (a word with its leading space is one token), ids stay below `max_size`,
    and EOS is `eos_id` (the model's vocabulary size: never sampled, so completions run to full length)."""
    from collections import Counter

    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from dumpcli.policy.tiny import CHARACTERS

    pattern = r" ?[A-Za-z]+| ?[0-9]+| ?[^A-Za-z0-9\s]|\s"
    vocab = {"<pad>": 0, "<unk>": 1}
    for ch in CHARACTERS:  # every printable character maps, so nothing but new words is <unk>
        vocab.setdefault(ch, len(vocab))
    words = Counter(w for text in texts for w in re.findall(pattern, text))
    for word, _ in words.most_common():
        if len(vocab) >= max_size:
            break
        vocab.setdefault(word, len(vocab))
    vocab["<eos>"] = eos_id
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    core.decoder = decoders.Fuse()  # ids the vocabulary lacks (most of the model's) decode to nothing
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>",
                                   padding_side="left", clean_up_tokenization_spaces=False)


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "accelerate", "pyarrow", "dumpcli"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def child_prepare(spec: dict[str, Any]) -> dict[str, Any]:
    """Device facts, the dataset, and one random-weight model folder per model config."""
    import importlib.util

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from dumpcli.data.recipe import prepare_recipe
    from dumpcli.policy import render_prompts

    cuda = torch.cuda.is_available()
    device = {
        "type": "cuda" if cuda else "cpu",
        "name": torch.cuda.get_device_name(0) if cuda else f"CPU {platform.machine()}, {os.cpu_count()} cores",
        "memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))) if cuda else None,
        "cpu_count": os.cpu_count(),
        "bitsandbytes": importlib.util.find_spec("bitsandbytes") is not None,
    }
    work = Path(spec["work"])
    dataset = prepare_recipe({"seed": 0, "sources": [{"source": "kk", "people": str(KK_PEOPLE), "train": KK_TRAIN,
                                                       "test": 1}]}, work / "data")
    rows = dataset.rows("train")
    models = {}
    for name in spec["models"]:
        raw = {k: v for k, v in json.loads((MODELS_DIR / f"{name}.json").read_text()).items() if not k.startswith("_")}
        vocab_size = int(raw["vocab_size"])
        probe = word_tokenizer([], 10, vocab_size)  # render_prompts needs a tokenizer (no chat template)
        texts = render_prompts(probe, [r["prompt"] for r in rows], [r["prefill"] for r in rows])
        tokenizer = word_tokenizer(texts, vocab_size, vocab_size)
        # The out-of-vocabulary EOS lives in the tokenizer only (both trainers stop on the tokenizer's
        # EOS); the model config keeps none, as transformers validates its ids against the vocabulary.
        config = AutoConfig.for_model(raw.pop("model_type"), **raw, pad_token_id=tokenizer.pad_token_id,
                                      eos_token_id=None, bos_token_id=None)
        torch.manual_seed(0)
        # Initialised on the GPU where there is one: seconds instead of a minute for 1.5B on the CPU.
        with torch.device("cuda" if cuda else "cpu"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = None
        folder = work / "models" / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        prompt_tokens = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
        models[name] = {
            "dir": str(folder), "config": str((MODELS_DIR / f"{name}.json").relative_to(REPO)),
            "params": model.num_parameters(), "vocab_size": vocab_size, "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size, "mean_prompt_tokens": statistics.mean(prompt_tokens),
        }
        del model
    return {"device": device, "versions": package_versions(), "data_dir": str(work / "data"), "models": models,
            "dataset": f"kk, {KK_PEOPLE} people, {len(rows)} train prompts (dump prepare kk)"}


def run_config(spec: dict[str, Any]) -> Any:
    """kk-gpu.yaml with this run's model, mode, data, step shape and beta 0."""
    import dataclasses

    from dumpcli.config import DataConfig, load_config_file

    cfg = load_config_file(GPU_CONFIG)
    mode = spec["mode"]
    model = dataclasses.replace(cfg.model, name=spec["model_dir"], dtype="auto", device="auto",
                                gradient_checkpointing=mode != "lora", load_in_4bit=mode == "qlora")
    grpo = dataclasses.replace(cfg.grpo, beta=0.0, **spec["shape"])
    run = dataclasses.replace(cfg.run, seed=spec["seed"], threads=spec["threads"])
    return dataclasses.replace(cfg, model=model, data=DataConfig(path=spec["data_dir"]), grpo=grpo, run=run)


def child_run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from grpo_compare import SIDES as RUNNERS
    from grpo_compare import peak_memory_mb

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    result = RUNNERS[spec["side"]](run_config(spec), spec["steps"] + 1)
    return {**result, "memory": peak_memory_mb()}


# ------------------------------------------------------------------ the parent: stages, report, table


class Check:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / LOG).write_text("")
        self.started = time.monotonic()
        self.deadline = self.started + args.budget_s
        shape = SMOKE_SHAPE if args.smoke else gpu_shape()
        self.report: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "mode": "smoke" if args.smoke else "gpu",
            "complete": False,
            "budget_s": args.budget_s,
            "shape": {**shape, "completions": shape["batch_size"] * shape["num_generations"],
                      "warmup_steps": 1, "timed_steps": args.steps, "beta": 0.0, "config": str(GPU_CONFIG.relative_to(REPO))},
            "mfu_formula": "6 * params * completions * (mean prompt tokens + mean completion tokens) / update_s / bf16 peak",
            "tests": None,
            "device": None,
            "versions": None,
            "models": {},
            "runs": [],
            "comparisons": [],
            "targets": {},
        }
        self.shape = shape

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def log(self, title: str, text: str) -> None:
        with open(self.out / LOG, "a") as f:
            f.write(f"===== {title} =====\n{text.rstrip()}\n")

    def save(self) -> None:
        self.report["wall_s"] = round(time.monotonic() - self.started, 1)
        tmp = self.out / (REPORT + ".tmp")
        tmp.write_text(json.dumps(self.report, indent=2) + "\n")
        tmp.replace(self.out / REPORT)

    def env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        if self.args.threads:  # OpenMP pools too, not only torch's intra-op threads
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.args.threads)
        return env

    def spawn(self, what: str, spec: dict[str, Any], timeout: float) -> tuple[str, Any]:
        """Run a child; ("ok", its JSON) or ("failed" / "timeout", a one-line reason)."""
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", what, "--spec", json.dumps(spec)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=REPO)
        except subprocess.TimeoutExpired as e:
            self.log(f"{what} {spec.get('name', '')} (timeout)", _text(e.stderr)[-6000:])
            return "timeout", f"killed after {timeout:.0f} s (per-run limit or the check's budget)"
        self.log(f"{what} {spec.get('name', '')} (exit {proc.returncode})", proc.stderr[-6000:])
        if proc.returncode != 0:
            return "failed", last_error_line(proc.stderr) or f"exit {proc.returncode}"
        return "ok", json.loads(proc.stdout.strip().splitlines()[-1])

    # -- stages

    def run_tests(self) -> None:
        if self.args.skip_tests:
            self.report["tests"] = {"status": "skipped", "reason": "--skip-tests"}
            return
        timeout = max(1.0, min(self.args.tests_timeout_s, self.remaining()))
        cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "tests/test_cuda.py"]
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=REPO)
        except subprocess.TimeoutExpired as e:
            self.log("pytest -m cuda (timeout)", _text(e.stdout)[-6000:])
            self.report["tests"] = {"status": "timeout", "command": " ".join(cmd[1:]), "seconds": round(timeout, 1)}
            return
        self.log(f"pytest -m cuda (exit {proc.returncode})", proc.stdout[-8000:] + proc.stderr[-2000:])
        counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", proc.stdout)}
        self.report["tests"] = {
            "status": "ok" if proc.returncode == 0 else "failed", "exit_code": proc.returncode,
            "command": "python " + " ".join(cmd[1:]), "seconds": round(time.monotonic() - started, 1),
            "passed": counts.get("passed", 0), "failed": counts.get("failed", 0),
            "errors": counts.get("error", 0) + counts.get("errors", 0), "skipped": counts.get("skipped", 0),
            "skip_reasons": sorted(set(re.findall(r"SKIPPED \[\d+\] [^:]+:\d*:? ?(.*)", proc.stdout))),
        }

    def prepare(self, work: Path) -> dict[str, Any] | None:
        spec = {"work": str(work), "models": self.models, "name": "models"}
        status, result = self.spawn("prepare", spec, max(1.0, min(self.args.prepare_timeout_s, self.remaining())))
        if status != "ok":
            self.report["prepare"] = {"status": status, "reason": result}
            return None
        self.report["device"] = {**result["device"], "bf16_peak_tflops": bf16_peak_tflops(
            result["device"]["name"] if result["device"]["type"] == "cuda" else None)}
        self.report["versions"] = result["versions"]
        self.report["dataset"] = result["dataset"]
        self.report["models"] = {k: {kk: v for kk, v in m.items() if kk != "dir"} for k, m in result["models"].items()}
        return result

    def skip_reason(self, mode: str, device: dict[str, Any]) -> str | None:
        if mode != "qlora":
            return None
        if device["type"] != "cuda":
            return "4-bit QLoRA needs a CUDA GPU; this run has none"
        if not device["bitsandbytes"]:
            return "bitsandbytes is not installed (its wheel was not carried in .whl/)"
        return None

    def run_all(self, prepared: dict[str, Any]) -> None:
        device = prepared["device"]
        for model in self.models:
            for mode in self.modes:
                for side in self.sides:
                    entry: dict[str, Any] = {"model": model, "mode": mode, "side": side}
                    reason = self.skip_reason(mode, device)
                    if reason is None and self.remaining() < self.args.min_run_s:
                        reason = f"the check's time budget ({self.args.budget_s:.0f} s) ran out"
                    if reason is not None:
                        self.report["runs"].append({**entry, "status": "skipped", "reason": reason})
                        self.save()
                        continue
                    spec = {"name": f"{model}/{mode}/{side}", "model_dir": prepared["models"][model]["dir"],
                            "mode": mode, "side": side, "steps": self.args.steps, "data_dir": prepared["data_dir"],
                            "seed": 0, "threads": self.args.threads, "shape": self.shape}
                    started = time.monotonic()
                    status, result = self.spawn("run", spec, max(1.0, min(self.args.run_timeout_s, self.remaining())))
                    entry["wall_s"] = round(time.monotonic() - started, 1)
                    if status == "ok":
                        entry.update(self.summarise(result, prepared["models"][model], device))
                    else:
                        entry.update({"status": status, "reason": result})
                    self.report["runs"].append(entry)
                    self.report["comparisons"] = comparisons(self.report["runs"])
                    self.report["targets"] = targets(self.report["runs"], self.report["comparisons"])
                    self.save()

    def summarise(self, result: dict[str, Any], model: dict[str, Any], device: dict[str, Any]) -> dict[str, Any]:
        steps = result["steps"]
        timed = steps[1:] or steps
        completions = self.shape["batch_size"] * self.shape["num_generations"]
        step_s = statistics.median(s["step_s"] for s in timed)
        generation_s = statistics.median(s["generation_s"] for s in timed)
        update_s = statistics.median(s["step_s"] - s["generation_s"] for s in timed)
        length = statistics.mean(s["mean_length"] for s in timed)
        memory = result["memory"]
        on_gpu = memory["cuda_peak_allocated_mb"] is not None
        tokens = completions * (model["mean_prompt_tokens"] + length)
        flops = 6 * model["params"] * tokens
        peak = bf16_peak_tflops(device["name"]) if device["type"] == "cuda" else None
        achieved = flops / update_s / 1e12 if update_s > 0 else None
        return {
            "status": "ok",
            "step_s": step_s, "generation_s": generation_s, "update_s": update_s,
            "mean_completion_tokens": length,
            "generated_tokens_per_s": completions * length / generation_s if generation_s > 0 else None,
            "peak_memory_mb": memory["cuda_peak_allocated_mb"] if on_gpu else memory["peak_rss_mb"],
            "peak_memory_kind": "cuda_max_allocated" if on_gpu else "cpu_peak_rss",
            "peak_reserved_mb": memory["cuda_peak_reserved_mb"],
            "peak_rss_mb": memory["peak_rss_mb"],
            "update_flops": flops,
            "update_tflop_per_s": achieved,
            "update_mfu": achieved / peak if achieved is not None and peak else None,
            "steps": steps,
        }

    def main(self) -> int:
        self.models = self.args.models.split(",") if self.args.models else (SMOKE_MODELS if self.args.smoke else GPU_MODELS)
        self.modes = self.args.modes.split(",")
        self.sides = self.args.sides.split(",")
        unknown = [m for m in self.models if not (MODELS_DIR / f"{m}.json").is_file()]
        if unknown:
            raise SystemExit(f"gpu_check: no model config {MODELS_DIR / unknown[0]}.json")
        self.save()
        self.run_tests()
        self.save()
        work = Path(self.args.work) if self.args.work else Path(tempfile.mkdtemp(prefix="dump-gpu-check-"))
        try:
            prepared = self.prepare(work)
            self.save()
            if prepared is not None:
                self.run_all(prepared)
        finally:
            if not self.args.keep_work:
                shutil.rmtree(work, ignore_errors=True)
        runs = self.report["runs"]
        tests = self.report["tests"] or {}
        self.report["complete"] = (prepared is not None and bool(runs)
                                   and all(r["status"] in ("ok", "skipped") for r in runs)
                                   and not any("budget" in r.get("reason", "") for r in runs)
                                   and tests.get("status") in ("ok", "skipped"))
        self.save()
        table = render_table(self.report)
        (self.out / TABLE).write_text(table)
        print(table, end="")
        print(f"report: {self.out / REPORT}  table: {self.out / TABLE}  log: {self.out / LOG}", file=sys.stderr)
        return 0 if self.report["complete"] else 1


def gpu_shape() -> dict[str, int]:
    """kk-gpu.yaml's step shape."""
    import yaml

    grpo = yaml.safe_load(GPU_CONFIG.read_text())["grpo"]
    return {k: int(grpo[k]) for k in ("batch_size", "num_generations", "max_new_tokens", "micro_batch_size")}


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def last_error_line(stderr: str) -> str:
    """The exception line of a traceback (or the last non-empty line), for a one-line reason."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Interrupt)\b", line) or line.startswith("dump: error"):
            return line[:500]
    return lines[-1][:500] if lines else ""


def comparisons(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """TRL / ours per (model, mode) where both sides ran: above 1 means ours is faster / smaller."""
    ok = {(r["model"], r["mode"], r["side"]): r for r in runs if r["status"] == "ok"}
    out = []
    for (model, mode, side), ours in ok.items():
        trl = ok.get((model, mode, "trl"))
        if side != "ours" or trl is None:
            continue
        out.append({
            "model": model, "mode": mode,
            "step_time_ratio_trl_over_ours": trl["step_s"] / ours["step_s"],
            "generation_time_ratio_trl_over_ours": trl["generation_s"] / ours["generation_s"],
            "update_time_ratio_trl_over_ours": trl["update_s"] / ours["update_s"] if ours["update_s"] > 0 else None,
            "peak_memory_ratio_trl_over_ours": trl["peak_memory_mb"] / ours["peak_memory_mb"],
        })
    return out


def targets(runs: list[dict[str, Any]], comps: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets as measured ratios; `met` is null where nothing was measured."""
    def at_least_one(key: str) -> dict[str, Any]:
        ratios = {f"{c['model']}/{c['mode']}": c[key] for c in comps}
        return {"ratios_trl_over_ours": ratios, "met": all(v >= 1.0 for v in ratios.values()) if ratios else None}

    ok = {(r["model"], r["mode"], r["side"]): r for r in runs if r["status"] == "ok"}
    qlora = ok.get((QLORA_TARGET_MODEL, "qlora", "ours"))
    qlora_target: dict[str, Any] = {"model": QLORA_TARGET_MODEL, "side": "ours"}
    for base in ("lora-gc", "lora"):
        bf16 = ok.get((QLORA_TARGET_MODEL, base, "ours"))
        ratio = qlora["peak_memory_mb"] / bf16["peak_memory_mb"] if qlora and bf16 else None
        qlora_target[f"ratio_over_{base.replace('-', '_')}"] = ratio
    # lora-gc is the like-for-like baseline: QLoRA runs with checkpointing on, as kk-gpu.yaml does
    ratio = qlora_target["ratio_over_lora_gc"]
    qlora_target["met"] = ratio <= 0.5 if ratio is not None else None
    return {
        "ours_step_time_at_most_trl": at_least_one("step_time_ratio_trl_over_ours"),
        "ours_peak_memory_at_most_trl": at_least_one("peak_memory_ratio_trl_over_ours"),
        "qlora_peak_memory_at_most_half_of_bf16_lora": qlora_target,
    }


def _fmt(value: Any, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def render_table(report: dict[str, Any]) -> str:
    """The report as a short Markdown table with the targets under it."""
    device = report.get("device") or {}
    shape = report["shape"]
    lines = [
        f"GPU check ({report['mode']}), {report['date']}, {device.get('name', 'device unknown')}"
        f"{', bf16 peak %.0f TFLOP/s' % device['bf16_peak_tflops'] if device.get('bf16_peak_tflops') else ''}",
        f"step: {shape['batch_size']} prompts x {shape['num_generations']} completions x {shape['max_new_tokens']} "
        f"new tokens, micro-batch {shape['micro_batch_size']}, 1 warm-up + {shape['timed_steps']} timed step(s)",
        "",
    ]
    tests = report.get("tests") or {}
    if tests.get("status") in ("ok", "failed"):
        lines.append(f"cuda tests: {tests['passed']} passed, {tests['failed']} failed, {tests['errors']} errors, "
                     f"{tests['skipped']} skipped" + (f" ({'; '.join(tests['skip_reasons'])})" if tests["skip_reasons"] else ""))
    elif tests:
        lines.append(f"cuda tests: {tests['status']}")
    if "prepare" in report:
        lines.append(f"prepare: {report['prepare']['status']}: {report['prepare']['reason']}")
    lines += ["", "| model | mode | side | step s | gen s | update s | gen tok/s | peak mem GiB | update MFU | "
                  "TRL/ours time | TRL/ours mem |", "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    comps = {(c["model"], c["mode"]): c for c in report["comparisons"]}
    for r in report["runs"]:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | {r['mode']} | {r['side']} | {r['status']}: {r['reason']} | | | | | | | |")
            continue
        c = comps.get((r["model"], r["mode"])) if r["side"] == "trl" else None
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['side']} | {r['step_s']:.2f} | {r['generation_s']:.2f} | "
            f"{r['update_s']:.2f} | {_fmt(r['generated_tokens_per_s'], '.0f')} | {r['peak_memory_mb'] / 1024:.2f} | "
            f"{_fmt(r['update_mfu'], '.1%')} | {_fmt(c and c['step_time_ratio_trl_over_ours'], '.2f')} | "
            f"{_fmt(c and c['peak_memory_ratio_trl_over_ours'], '.2f')} |"
        )
    t = report.get("targets") or {}
    if t:
        def verdict(met: Any) -> str:
            return {True: "met", False: "NOT met", None: "not measured"}[met]

        time_t, mem_t, q = t["ours_step_time_at_most_trl"], t["ours_peak_memory_at_most_trl"], \
            t["qlora_peak_memory_at_most_half_of_bf16_lora"]
        lines += [
            "",
            f"- ours' step time <= TRL's on every configuration: {verdict(time_t['met'])} "
            f"(TRL/ours {', '.join(f'{k} {v:.2f}' for k, v in time_t['ratios_trl_over_ours'].items()) or '—'})",
            f"- ours' peak memory <= TRL's on every configuration: {verdict(mem_t['met'])} "
            f"(TRL/ours {', '.join(f'{k} {v:.2f}' for k, v in mem_t['ratios_trl_over_ours'].items()) or '—'})",
            f"- QLoRA peak memory <= 0.5x bf16 LoRA's on {q['model']}: {verdict(q['met'])} "
            f"(qlora / lora-gc {_fmt(q['ratio_over_lora_gc'], '.2f')}, qlora / lora {_fmt(q['ratio_over_lora'], '.2f')})",
        ]
    mem_kind = next((r["peak_memory_kind"] for r in report["runs"] if r["status"] == "ok"), None)
    lines += ["", f"peak mem: {'torch.cuda.max_memory_allocated' if mem_kind == 'cuda_max_allocated' else 'peak RSS'}"
                  f" of each run's process; MFU: {report['mfu_formula']}; complete: {str(report['complete']).lower()}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--out", help="folder for gpu-check.json, gpu-check.md and gpu-check.log "
                                 "(default bench/gpu-check, or bench/gpu-smoke with --smoke)")
    p.add_argument("--smoke", action="store_true", help="the same code on CPU at a tiny size (what CI runs)")
    p.add_argument("--models", help=f"comma-separated names in benchmarks/gpu_models/ (default {','.join(GPU_MODELS)}; "
                                    f"{','.join(SMOKE_MODELS)} with --smoke)")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, from lora, lora-gc, qlora")
    p.add_argument("--sides", default=",".join(SIDES), help="comma-separated, from ours, trl")
    p.add_argument("--steps", type=int, default=1, help="timed steps per run, after one warm-up step")
    p.add_argument("--budget-s", type=float, help="the whole check's time limit (default 420, so that with the "
                                                        "offline install it stays under 8 minutes; 300 with --smoke)")
    p.add_argument("--run-timeout-s", type=float, help="limit per run (default 150; 120 with --smoke)")
    p.add_argument("--tests-timeout-s", type=float, default=120.0)
    p.add_argument("--prepare-timeout-s", type=float, default=120.0)
    p.add_argument("--min-run-s", type=float, help="no run starts with less of the budget left (default 30; 5 with --smoke)")
    p.add_argument("--threads", type=int, help="torch/OpenMP threads per process (default: torch's; 1 with --smoke)")
    p.add_argument("--skip-tests", action="store_true", help="leave out the pytest -m cuda stage")
    p.add_argument("--work", help="scratch folder for the dataset and model weights (default: a new temp dir)")
    p.add_argument("--keep-work", action="store_true", help="keep the scratch folder")
    p.add_argument("--child", choices=["prepare", "run"], help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        spec = json.loads(args.spec)
        result = child_prepare(spec) if args.child == "prepare" else child_run(spec)
        print(json.dumps(result))
        return 0
    modes_bad = set(args.modes.split(",")) - set(MODES)
    sides_bad = set(args.sides.split(",")) - set(SIDES)
    if modes_bad or sides_bad or args.steps < 1:
        p.error(f"unknown modes {sorted(modes_bad)} or sides {sorted(sides_bad)}, or --steps < 1")
    args.out = args.out or str(REPO / "bench" / ("gpu-smoke" if args.smoke else "gpu-check"))
    args.budget_s = args.budget_s or (300.0 if args.smoke else 420.0)
    args.run_timeout_s = args.run_timeout_s or (120.0 if args.smoke else 150.0)
    args.min_run_s = args.min_run_s if args.min_run_s is not None else (5.0 if args.smoke else 30.0)
    args.threads = args.threads if args.threads is not None else (1 if args.smoke else 0)
    with contextlib.suppress(KeyboardInterrupt):
        return Check(args).main()
    return 130


if __name__ == "__main__":
    sys.exit(main())
