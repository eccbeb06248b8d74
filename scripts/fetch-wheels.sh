#!/usr/bin/env bash
# Download into .whl/ (git-ignored) the wheels the GPU check needs and a bare GPU machine lacks:
# trl, datasets (+ dill, multiprocess) and bitsandbytes. That machine has no network; its python3
# has torch, transformers, peft, accelerate, pyarrow, pandas, huggingface-hub and the rest.
# scripts/gpu-check.sh installs .whl/ there with pip --no-index. About 45 MB, 43 of them bitsandbytes.
#   bash scripts/fetch-wheels.sh                     # for the GPU machine's Python 3.12, Linux x86-64
#   WHEEL_PYTHON_VERSION=3.11 bash scripts/fetch-wheels.sh
# trl and datasets: the versions in ./.venv when there is one (what CI runs the smoke check with).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${WHEEL_PYTHON_VERSION:-3.12}
installed() {  # the version of $1 in ./.venv, else $2
  if [ -x .venv/bin/python ]; then
    .venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null && return
  fi
  echo "$2"
}
TRL=$(installed trl 1.16.0)
DATASETS=$(installed datasets 5.2.0)
DILL=$(installed dill 0.4.1)
MULTIPROCESS=$(installed multiprocess 0.70.19)
BITSANDBYTES=${BITSANDBYTES_VERSION:-0.50.2}  # ships libbitsandbytes_cuda130 (the GPU machine's torch is cu130)
rm -rf .whl
mkdir -p .whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${platforms[@]}" -d .whl "trl==$TRL" "datasets==$DATASETS" "dill==$DILL" "multiprocess==$MULTIPROCESS" \
  "bitsandbytes==$BITSANDBYTES"
ls -l .whl >&2
size_mb=$(du -sm .whl | cut -f1)
echo "fetch-wheels: .whl/ holds ${size_mb} MB for Python $PYVER" >&2
if [ "$size_mb" -gt 60 ]; then
  echo "fetch-wheels: over the 60 MB a device run may carry beside the repo; drop bitsandbytes (QLoRA is then skipped)" >&2
  exit 1
fi
