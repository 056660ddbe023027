#!/usr/bin/env bash
# Set up (first time only) and run the test suite. Arguments are passed to pytest.
# Tests that need PostgreSQL, Redis or an S3 emulator skip cleanly when those are absent; .ci/run provides them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh telegram,discord,postgres,test
exec .venv/bin/python -m pytest "$@"
