#!/usr/bin/env bash
# The GPU check, one unattended command: benchmarks/gpu_check.py (arguments pass through) writes
# gpu-check.json, gpu-check.md and gpu-check.log into --out. See benchmarks/GPU.md.
#   bash scripts/gpu-check.sh --out DIR        # on a GPU machine
#   bash scripts/gpu-check.sh --smoke          # the same code on CPU at a tiny size
# With ./.venv (scripts/setup.sh) it runs there. Without one -- a bare GPU machine whose python3 has
# torch, transformers and peft but no network -- it first installs the wheels that
# scripts/fetch-wheels.sh put in .whl/, and dump itself, into $DUMP_GPU_SITE with pip --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then
  exec .venv/bin/python benchmarks/gpu_check.py "$@"
fi
PY=${PYTHON:-python3}
SITE=${DUMP_GPU_SITE:-/tmp/dump-gpu-site}
if ! ls .whl/*.whl >/dev/null 2>&1; then
  echo "gpu-check: no .venv and no wheels in .whl/: run scripts/setup.sh here, or scripts/fetch-wheels.sh" \
       "where pip reaches an index and carry .whl/ to this machine" >&2
  exit 2
fi
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
# dump itself, with its entry points (schedulers, rewards); built by the machine's own setuptools,
# since build isolation would fetch setuptools from an index.
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$SITE" .
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" benchmarks/gpu_check.py "$@"
