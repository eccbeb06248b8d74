#!/usr/bin/env bash
# The DUMP paper's setting on one GPU: ucb vs uniform on Knights and Knaves 3..14 people, offline,
# from a local weights folder, with the paper's scheduler settings (window 300, c 1, tau 0.1: the
# defaults) and examples/configs/kk-gpu.yaml (LoRA, 8 prompts x 8 completions x 512 tokens, bf16).
#
#   bash scripts/kk-paper.sh /models/Qwen2.5-1.5B-Instruct                       # generated puzzles
#   bash scripts/kk-paper.sh /models/Qwen2.5-7B-Instruct-1M --import kk/train.parquet kk/test.parquet
#   bash scripts/kk-paper.sh --smoke                                             # CPU, tiny-random, 2 steps
#
# Options: --out DIR (default bench/kk-paper), --seeds "0 1 2" (default 0), --steps N (default the
# config's 150), --arms "ucb uniform" (default). Each arm x seed is one `dump train` run dir under
# DIR; a finished one is kept, an interrupted one resumed. At the end each run gets
# final-eval.json (`dump eval --samples 4`: greedy and sampled accuracy per size) and `dump inspect`
# writes DIR/compare.json and DIR/compare.png. Nothing is downloaded: HF_HUB_OFFLINE=1.
# Needs (estimates, never run on a GPU; benchmarks/GPU.md): 1.5B ~10-12 GB GPU memory and ~1.5 h
# per arm and seed on an H100; 7B with LoRA ~25-30 GB and 5-6 h.
set -euo pipefail
cd "$(dirname "$0")/.."
DUMP=${DUMP:-.venv/bin/dump}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

usage() { echo "usage: bash scripts/kk-paper.sh WEIGHTS_DIR [--import TRAIN TEST] [--out DIR] [--seeds \"0 1\"] [--steps N] [--arms \"ucb uniform\"] | --smoke" >&2; exit 2; }

weights="" out=bench/kk-paper seeds=0 steps="" arms="ucb uniform" import=() smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --import) [ $# -ge 3 ] || usage; import=("$2" "$3"); shift 3 ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --seeds) [ $# -ge 2 ] || usage; seeds=$2; shift 2 ;;
    --steps) [ $# -ge 2 ] || usage; steps=$2; shift 2 ;;
    --arms) [ $# -ge 2 ] || usage; arms=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) echo "kk-paper: unknown option $1" >&2; usage ;;
    *) [ -z "$weights" ] || usage; weights=$1; shift ;;
  esac
done

extra=()
if [ "$smoke" = 1 ]; then
  # The same commands at a size CI runs in seconds: tiny-random on 3 and 4 people, 2 steps.
  weights=tiny-random; out=${out/#bench\/kk-paper/$(mktemp -d)/kk-paper}; steps=${steps:-2}
  extra=(--set model.lora=false --set model.dtype=float32 --set model.gradient_checkpointing=false
         --set grpo.beta=0 --set grpo.batch_size=2 --set grpo.num_generations=2 --set grpo.max_new_tokens=8
         --set grpo.micro_batch_size=none --set data.eval_rows=2 --set run.eval_every=0 --set run.save_every=0
         --set run.threads=1 --set run.progress=false)
elif [ -z "$weights" ]; then
  usage
elif [ ! -f "$weights/config.json" ]; then
  echo "kk-paper: $weights has no config.json; pass a local Hugging Face model folder (nothing is downloaded)" >&2; exit 2
fi

mkdir -p "$out"
data=$out/data
if [ ! -f "$data/dataset.yaml" ]; then
  if [ ${#import[@]} -gt 0 ]; then
    "$DUMP" prepare import "${import[@]}" --out "$data"     # DUMP's own parquet files (data_source -> distribution)
  elif [ "$smoke" = 1 ]; then
    "$DUMP" prepare kk --people 3-4 --train 8 --test 2 --out "$data"
  else
    "$DUMP" prepare recipe kk-paper --out "$data"            # kk-3 .. kk-14, 900 / 100 each, as the paper
  fi
fi

runs=()
for seed in $seeds; do
  for arm in $arms; do
    run=$out/$arm-seed$seed
    runs+=("$run")
    if [ -f "$run/config.yaml" ]; then
      "$DUMP" train --resume "$run"                            # finished: a no-op; interrupted: continues
    else
      "$DUMP" train --config examples/configs/kk-gpu.yaml --model "$weights" --data "$data" --scheduler "$arm" \
        --seed "$seed" --out "$run" ${steps:+--steps "$steps"} "${extra[@]}"
    fi
  done
done
for run in "${runs[@]}"; do
  # Greedy and sampled exact-answer accuracy per K&K size at the end (4 samples at temperature 1).
  [ -f "$run/final-eval.json" ] || "$DUMP" eval --run "$run" --samples 4 --json > "$run/final-eval.json"
done
"$DUMP" inspect "${runs[@]}" --json --plot "$out/compare.png" > "$out/compare.json"
echo "kk-paper: wrote $out/compare.json, $out/compare.png and <run>/final-eval.json" >&2
