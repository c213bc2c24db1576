#!/usr/bin/env bash
# Collect speed on one CUDA GPU in under 8 minutes, offline (see docs/parallel.md, "GPU check").
#   bash benchmarks/gpu_check.sh            (from the repository root; torch with CUDA present)
# Prints: collect vs the headless forward (3 points, 3 points without top-k, all points), eager and
# torch.compile; 1 vs 2 workers when there are 2 GPUs. Model: random Qwen3-0.6B-shaped, bf16.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python}
$PY -c "import zipfstage" 2>/dev/null || $PY -m pip install -q -e . --no-deps
$PY -c "import zarr, numba, typer, pydantic_settings" 2>/dev/null || $PY -m pip install -q -e .
MODEL=${MODEL_DIR:-/tmp/zipfstage-qwen3-0.6b-random}
ARGS=(--model "$MODEL" --device cuda --dtype bfloat16 --tokens ${TOKENS:-131072}
      --seq-len 1024 --batch-size 16 --repeats 3)
step() { echo "== $1 ($(date +%T))"; }
step "build model"
timeout 120 $PY benchmarks/gpu_model.py "$MODEL" || { echo "model build failed"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
step "eager: collect vs headless forward"
timeout 150 $PY benchmarks/bench_collect.py "${ARGS[@]}"
step "torch.compile: collect vs headless forward"
timeout 200 $PY benchmarks/bench_collect.py "${ARGS[@]}" --compile --modes headless,three,all \
    || echo "torch.compile run failed or timed out (eager numbers above stand)"
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ]; then
    step "1 vs 2 workers"
    timeout 150 $PY benchmarks/bench_workers.py --model "$MODEL" --tokens 65536 --seq-len 1024 \
        --batch-size 16 --repeats 1 --devices cuda:0 cuda:0,cuda:1
else
    echo "== 1 vs 2 workers: skipped (this machine has $GPUS GPU)"
fi
step "done"
