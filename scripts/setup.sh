#!/usr/bin/env bash
# Create .venv and install the project with the given extras (default: both bots and PostgreSQL).
# Idempotent: it reinstalls only when pyproject.toml, constraints.txt or the extras change. An existing torch is
# kept, so a GPU user can install the torch build for their CUDA version into .venv first. Versions come from
# constraints.txt, so every machine gets the set the tests passed with (and pip never backtracks for minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
extras=${1:-telegram,discord,postgres}
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-${extras//,/-}"
if [ ! -f "$stamp" ]; then
    echo "Setting up .venv (extras: $extras)..." >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    # Torch first: asked for by diffusers alone, pip could pick a build other than the one we test with.
    .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install --quiet "$torch_spec"
    .venv/bin/python -m pip install --quiet --constraint constraints.txt --editable ".[$extras]"
    rm -f .venv/.installed-*
    touch "$stamp"
fi
