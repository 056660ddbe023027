#!/usr/bin/env bash
# The GPU measurement, unattended, in under 8 minutes on one H100/H200-class GPU (set-up included): the paired
# bench at 512x512, 20 steps, float16, without and with torch.compile; float16 against float32; batched throughput
# (edit_many with 1, 4, 8 jobs). Writes one JSON file (core/editing/gpu_bench.py says what is in it).
#
#   scripts/gpu-bench.sh [OUT.json]      on the CUDA machine (default OUT: gpu-bench.json)
#   scripts/gpu-bench.sh --wheels        beforehand, where pip reaches the package index: fetch into .whl/ the
#                                        wheels a machine without internet lacks (diffusers; Python 3.12, x86-64)
#
# Python: .venv when it has a CUDA torch and diffusers; else the machine's python3 (with torch), plus the wheels in
# $EDITBOT_WHEELS (default .whl/) installed into a scratch folder, never into the system. Nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${EDITBOT_WHEELS:-.whl}
limit=${EDITBOT_GPU_BENCH_SECONDS:-420}

if [ "${1:-}" = "--wheels" ]; then
    version() { grep -i "^$1==" constraints.txt | cut -d= -f3; }
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$wheels" "diffusers==$(version diffusers)" "importlib_metadata==$(version importlib_metadata)"
    ls -l "$wheels"
    exit 0
fi
out=${1:-gpu-bench.json}

has_cuda_and_diffusers='import diffusers, torch; assert torch.cuda.is_available()'
if [ -x .venv/bin/python ] && .venv/bin/python -c "$has_cuda_and_diffusers" 2>/dev/null; then
    python=.venv/bin/python
else
    python=python3
    if ! "$python" -c "import diffusers" 2>/dev/null; then
        if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
            echo "diffusers is missing and $wheels/ holds no wheels: run 'scripts/gpu-bench.sh --wheels' where pip" \
                 "reaches the package index, and bring $wheels/ along." >&2
            exit 2
        fi
        site=$(mktemp -d /tmp/editbot-site.XXXXXX)
        "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
            "$wheels"/*.whl
        export PYTHONPATH="$site"
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! "$python" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
    echo "No CUDA device visible to $python: this script measures a GPU." >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
# The JSON is rewritten after each part, so a run stopped by the time limit keeps what it measured.
timeout "$limit" "$python" -m core.editing.gpu_bench --out "$out" || echo "gpu_bench ended early (status $?)" >&2
echo "wrote $out"
