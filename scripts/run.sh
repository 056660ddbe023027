#!/usr/bin/env bash
# Set up (first time only) and run: the bots whose tokens are set (Telegram, Discord, both in one process),
# else the web chat on http://127.0.0.1:7860/ (the terminal chat: `scripts/run.sh chat`).
# Arguments are passed to `editbot`, e.g. `scripts/run.sh edit photo.jpg "make it night" -o night.png`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh telegram,discord,postgres
exec .venv/bin/editbot "$@"
