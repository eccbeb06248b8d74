"""benchmarks/gpu_check.py's smoke mode end to end (the GPU check's own code on CPU at a tiny size,
TRL included), so the script that waits for a GPU cannot rot; plus its pure helpers."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    # lora runs both sides; qlora exercises the skip path (no GPU here) at no cost.
    out = tmp_path_factory.mktemp("gpu-smoke")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--modes", "lora,qlora", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    return proc, out


def test_smoke_run_succeeds_and_writes_report_table_and_log(smoke: tuple[Any, Path]) -> None:
    proc, out = smoke
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"gpu-check.json", "gpu-check.md", "gpu-check.log"}
    table = (out / "gpu-check.md").read_text()
    assert table == proc.stdout  # the table printed is the table written
    assert "| smoke-qwen2 | lora | ours |" in table and "| smoke-qwen2 | lora | trl |" in table
    assert "skipped: 4-bit QLoRA needs a CUDA GPU" in table


def test_smoke_report_schema(smoke: tuple[Any, Path]) -> None:
    report = json.loads((smoke[1] / "gpu-check.json").read_text())
    assert report["format_version"] == 1 and report["mode"] == "smoke" and report["complete"] is True
    assert report["shape"]["completions"] == report["shape"]["batch_size"] * report["shape"]["num_generations"]
    assert report["device"]["type"] == "cpu" and report["device"]["bf16_peak_tflops"] is None
    assert report["versions"]["trl"] and report["versions"]["torch"]
    tests = report["tests"]
    assert tests["status"] == "ok" and tests["passed"] == tests["failed"] == tests["errors"] == 0
    assert tests["skipped"] >= 4 and any("CUDA" in r for r in tests["skip_reasons"])
    model = report["models"]["smoke-qwen2"]
    assert model["params"] > 0 and model["vocab_size"] == 4096 and model["mean_prompt_tokens"] > 100
    assert [(r["mode"], r["side"], r["status"]) for r in report["runs"]] == [
        ("lora", "ours", "ok"), ("lora", "trl", "ok"), ("qlora", "ours", "skipped"), ("qlora", "trl", "skipped")]


def test_smoke_numbers_are_sane_and_ratios_come_from_them(smoke: tuple[Any, Path]) -> None:
    report = json.loads((smoke[1] / "gpu-check.json").read_text())
    shape = report["shape"]
    runs = {r["side"]: r for r in report["runs"] if r["status"] == "ok"}
    for r in runs.values():
        assert len(r["steps"]) == 1 + shape["timed_steps"]
        assert 0 < r["generation_s"] < r["step_s"] and math.isclose(r["update_s"], r["step_s"] - r["generation_s"])
        # the tokenizer's EOS is outside the model's vocabulary: every completion runs to full length
        assert r["mean_completion_tokens"] == shape["max_new_tokens"]
        assert math.isclose(r["generated_tokens_per_s"], shape["completions"] * shape["max_new_tokens"] / r["generation_s"])
        assert r["peak_memory_kind"] == "cpu_peak_rss" and r["peak_memory_mb"] > 0
        assert r["update_flops"] > 0 and r["update_mfu"] is None  # no bf16 peak for a CPU
    (comparison,) = report["comparisons"]
    assert math.isclose(comparison["step_time_ratio_trl_over_ours"], runs["trl"]["step_s"] / runs["ours"]["step_s"])
    assert math.isclose(comparison["peak_memory_ratio_trl_over_ours"],
                        runs["trl"]["peak_memory_mb"] / runs["ours"]["peak_memory_mb"])
    time_target = report["targets"]["ours_step_time_at_most_trl"]
    assert time_target["met"] == (comparison["step_time_ratio_trl_over_ours"] >= 1.0)
    assert report["targets"]["qlora_peak_memory_at_most_half_of_bf16_lora"]["met"] is None


def test_bf16_peaks_by_card_name() -> None:
    peak = gpu_check().bf16_peak_tflops
    assert peak("NVIDIA H100 80GB HBM3") == 989.4
    assert peak("NVIDIA H100 PCIe") == 756.0
    assert peak("NVIDIA H200") == 989.4
    assert peak("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak("Some Future Card") is None and peak(None) is None


def test_targets_from_runs() -> None:
    m = gpu_check()

    def run(mode: str, side: str, step_s: float, mem: float) -> dict[str, Any]:
        return {"model": m.QLORA_TARGET_MODEL, "mode": mode, "side": side, "status": "ok", "step_s": step_s,
                "generation_s": step_s / 2, "update_s": step_s / 2, "peak_memory_mb": mem,
                "peak_memory_kind": "cuda_max_allocated", "generated_tokens_per_s": 1000.0, "update_mfu": 0.3}

    runs = [run("lora-gc", "ours", 10, 8000), run("lora-gc", "trl", 12, 16000),
            run("qlora", "ours", 14, 4800), run("qlora", "trl", 13, 9000),
            {"model": m.QLORA_TARGET_MODEL, "mode": "lora", "side": "ours", "status": "timeout", "reason": "x"}]
    comps = m.comparisons(runs)
    t = m.targets(runs, comps)
    assert t["ours_step_time_at_most_trl"]["met"] is False  # qlora: TRL 13 s vs ours 14 s
    assert t["ours_peak_memory_at_most_trl"]["met"] is True
    q = t["qlora_peak_memory_at_most_half_of_bf16_lora"]
    assert q["ratio_over_lora_gc"] == pytest.approx(0.6) and q["met"] is False and q["ratio_over_lora"] is None
    table = m.render_table({"mode": "gpu", "date": "d", "device": {"name": "NVIDIA H100 80GB HBM3", "bf16_peak_tflops": 989.4},
                            "shape": {"batch_size": 8, "num_generations": 8, "max_new_tokens": 512,
                                      "micro_batch_size": 16, "timed_steps": 1},
                            "tests": None, "runs": runs, "comparisons": comps, "targets": t,
                            "mfu_formula": "f", "complete": False})
    assert "timeout: x" in table and "NOT met" in table


def test_last_error_line_picks_the_exception() -> None:
    err = "Traceback (most recent call last):\n  File \"x\", line 1\ntorch.OutOfMemoryError: CUDA out of memory.\n"
    assert gpu_check().last_error_line(err) == "torch.OutOfMemoryError: CUDA out of memory."
