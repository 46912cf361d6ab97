#!/usr/bin/env bash
# The three GPU measurements of issue 15 in one go, on a host with one CUDA GPU:
#   1. the in-process fast path: ms/token and time to first token of an 8B Llama-shaped model
#      (random weights of the real shape), static cache + torch.compile, batch 1 (and eager);
#   2. vLLM: one battle vs. 16 at once of a Qwen2-Audio-shaped model (--load-format dummy)
#      through Parley's worker (--concurrency) and the openai_compatible backend;
#   3. the ASR stage: faster-whisper large-v3-turbo on a 10 s clip;
# plus the tests marked `gpu`. Everything it prints also goes to $OUT/gpu_check.log (or
# ./gpu_check.log), to be copied into docs/models.md ("Measured on a GPU").
#
#   scripts/gpu_check.sh                       # all three
#   SKIP_VLLM=1 scripts/gpu_check.sh           # without vLLM (not installed, or no time)
#
# Settings (environment):
#   PYTHON              the interpreter with Parley installed [.venv/bin/python, else python3]
#   QWEN2_AUDIO         what vLLM serves: hub id or a local directory with config + tokenizer
#                       (dummy weights need no download of weights, only these small files)
#                       [Qwen/Qwen2-Audio-7B-Instruct]
#   PARLEY_WHISPER_TURBO  faster-whisper large-v3-turbo: hub id or local CTranslate2 directory
#   VLLM_PORT [8011], BATTLES [16], TIME_BUDGET_S [540]
set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT_DIR=${OUT:-.}
LOG="$OUT_DIR/gpu_check.log"
QWEN2_AUDIO=${QWEN2_AUDIO:-Qwen/Qwen2-Audio-7B-Instruct}
VLLM_PORT=${VLLM_PORT:-8011}
BATTLES=${BATTLES:-16}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
failures=0

exec > >(tee -a "$LOG") 2>&1
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
run() { "$@" || { echo "!!! failed ($?): $*"; failures=$((failures + 1)); }; }

step "device and versions"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" - <<'PY'
import importlib, torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA")
for name in ("transformers", "ctranslate2", "faster_whisper", "vllm"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError:
        print(name, "not installed")
PY

if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA device here: these measurements need one (see docs/models.md)"; exit 2
fi

step "1. in-process fast path: synthetic llama-8b, static cache + compile, batch 1"
run "$PYTHON" benchmarks/bench_gpu.py --synthetic llama-8b --new-tokens 256 --runs 3
step "1b. same, eager (reference)"
run "$PYTHON" benchmarks/bench_gpu.py --synthetic llama-8b --new-tokens 64 --runs 2 --eager

step "3. ASR: faster-whisper large-v3-turbo on a 10 s clip"
run "$PYTHON" benchmarks/bench_gpu.py --asr "${PARLEY_WHISPER_TURBO:-deepdml/faster-whisper-large-v3-turbo-ct2}" --runs 5

step "tests marked gpu"
run "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/gpu -s

if [ -n "${SKIP_VLLM:-}" ]; then
  step "2. vLLM skipped (SKIP_VLLM is set)"
elif ! "$PYTHON" -c "import vllm" 2>/dev/null; then
  step "2. vLLM skipped: not installed (pip install vllm)"
  failures=$((failures + 1))
else
  step "2. vLLM: $QWEN2_AUDIO with dummy weights, one battle vs. $BATTLES at once"
  "$PYTHON" -m vllm.entrypoints.openai.api_server --model "$QWEN2_AUDIO" \
    --load-format dummy --port "$VLLM_PORT" --max-model-len 4096 \
    --gpu-memory-utilization 0.85 --limit-mm-per-prompt '{"audio": 1}' \
    > "$OUT_DIR/vllm.log" 2>&1 &
  vllm_pid=$!
  trap 'kill "$vllm_pid" 2>/dev/null; wait "$vllm_pid" 2>/dev/null' EXIT
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$VLLM_PORT/v1/models" >/dev/null && break
    kill -0 "$vllm_pid" 2>/dev/null || break
    sleep 1
  done
  if curl -sf "http://127.0.0.1:$VLLM_PORT/v1/models" >/dev/null; then
    run "$PYTHON" benchmarks/bench_concurrency.py --base-url "http://127.0.0.1:$VLLM_PORT/v1" \
      --model "$QWEN2_AUDIO" --audio-part audio_url --battles "$BATTLES" --runs 3 --max-tokens 128
  else
    echo "!!! vLLM did not come up; the end of its log:"; tail -40 "$OUT_DIR/vllm.log"
    failures=$((failures + 1))
  fi
fi

step "done: $failures step(s) failed; log in $LOG"
exit $((failures > 0))
