#!/usr/bin/env bash
# Collect speed on one CUDA GPU in under 8 minutes, offline (see docs/parallel.md, "GPU check").
#   bash benchmarks/gpu_check.sh            (from anywhere; torch with CUDA already installed)
# Never run on a GPU yet. Every step says what its lines mean before it runs; every step has its
# own timeout, and all of them together stay under BUDGET seconds (default 470), so a slow step
# cannot eat the window. Installs nothing: a missing package is named up front and the script
# stops. Models: random weights (the shapes set the cost), built here, bf16, see gpu_model.py.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=${PYTHON:-python}
BUDGET=${BUDGET:-470}
SMALL=${MODEL_DIR:-/tmp/zipfstage-qwen3-0.6b-random}
LARGE=${MODEL_4B_DIR:-/tmp/zipfstage-qwen3-4b-random}

say() { echo "== $1 ($(date +%T), ${SECONDS}s of ${BUDGET}s used)"; shift; for line in "$@"; do echo "   $line"; done; }
# step SECONDS COMMAND...: run with the smaller of its own timeout and what is left of the budget
step() {
    local want=$1; shift
    local left=$((BUDGET - SECONDS))
    if [ "$left" -lt 20 ]; then echo "   skipped: the ${BUDGET}s budget is spent"; return 124; fi
    timeout $((want < left ? want : left)) "$@"
    local rc=$?
    [ $rc -eq 124 ] && echo "   timed out (step limit ${want}s, ${left}s were left)"
    return $rc
}

say "imports" "every module the steps need, checked before anything runs"
$PY - <<'EOF' || exit 2
import importlib, sys
need = ["torch", "numpy", "transformers", "tokenizers", "zarr", "numba", "typer",
        "pydantic_settings", "rich", "yaml", "zipfstage.collect.runner", "tests.tiny_models"]
missing = []
for name in need:
    try:
        importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install that fails on import
        missing.append(f"{name} ({type(exc).__name__}: {exc})")
if missing:
    print("   missing: " + "; ".join(missing))
    print("   install them (pip install -e . from this folder, with network) and rerun")
    sys.exit(2)
import torch
if not torch.cuda.is_available():
    print(f"   torch {torch.__version__} sees no CUDA GPU (CUDA build: {torch.version.cuda})")
    sys.exit(2)
props = torch.cuda.get_device_properties(0)
print(f"   ok: torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} GPU(s), cuda:0 = {props.name}, "
      f"{props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}")
EOF

ARGS=(--device cuda --dtype bfloat16 --seq-len 1024 --batch-size 16)
LEGEND=("lines '# ...' describe the run; then one line per mode:"
        "<mode> <tok/s> <ratio to headless, wall clock> cpu <ratio, process CPU time>"
        "ratio = collect tok/s / bare-forward tok/s on the same batches (1.0 = collect is free;"
        "0.5 = collecting halves the speed); headless = the backbone over every layer, no LM head;"
        "three = embed,middle,last with all 16 metrics + top-8 + 64 channels; three-notopk = the"
        "same with --topk 0; all = every layer (and with --sites all, all five sites per layer)")

say "build the Qwen3-0.6B-shaped model" "28 layers, width 1,024, d_ff 3,072, into $SMALL"
step 90 $PY benchmarks/gpu_model.py "$SMALL" --shape 0.6b --device cuda \
    || { echo "   model build failed"; exit 1; }

say "0.6B eager: collect vs the bare forward, ${TOKENS:-65536} tokens x 3 repeats" "${LEGEND[@]}"
step 100 $PY benchmarks/bench_collect.py --model "$SMALL" "${ARGS[@]}" \
    --tokens "${TOKENS:-65536}" --repeats 3 || echo "   eager run failed (see above)"

say "0.6B with the per-width reduction torch.compile'd (the forward stays eager)" \
    "same lines as above; compare each ratio with the eager one (compilation is in the warm-up)"
step 110 $PY benchmarks/bench_collect.py --model "$SMALL" "${ARGS[@]}" \
    --tokens "${TOKENS:-65536}" --repeats 2 --compile --modes headless,three,all \
    || echo "   compiled run failed or timed out (the eager numbers above stand)"

say "build the Qwen3-4B-shaped model" "36 layers, width 2,560, d_ff 9,728 (~8 GB bf16), into $LARGE"
if step 80 $PY benchmarks/gpu_model.py "$LARGE" --shape 4b --device cuda; then
    say "4B, --sites all: 181 points (145 of width 2,560, 36 mlp_act of 9,728) per batch" \
        "${LEGEND[@]}" "all = the 181 points; the staged states are reduced by width (2 widths)"
    step 130 $PY benchmarks/bench_collect.py --model "$LARGE" "${ARGS[@]}" --batch-size 8 \
        --tokens "${TOKENS_4B:-32768}" --repeats 2 --modes headless,three,all --sites all \
        || echo "   4B all-sites run failed or timed out"
else
    echo "   4B model build failed or timed out: all-sites step skipped"
fi

GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -ge 2 ]; then
    say "1 vs 2 workers (0.6B)" "one line per device list: collect tok/s and the ratio to 1 worker"
    step 100 $PY benchmarks/bench_workers.py --model "$SMALL" --tokens 65536 --seq-len 1024 \
        --batch-size 16 --repeats 1 --devices cuda:0 cuda:0,cuda:1
else
    say "1 vs 2 workers: skipped" "this machine has $GPUS GPU"
fi
say "done" "total ${SECONDS}s"
