#!/usr/bin/env bash
# Set up (first time only) and run: the bots whose tokens are set (Telegram, Discord, both in one process),
# else the web chat on http://127.0.0.1:7860/ (the terminal chat: `scripts/run.sh chat`).
# Arguments are passed to `editbot`, e.g. `scripts/run.sh edit photo.jpg "make it night" -o night.png`.
#
# It runs in the folder you call it from: relative paths work as you typed them, results land there, and the
# settings come from the environment and from `.env` in that folder; the data (database, images) is in `data/`
# there unless EDITBOT_DATA_DIR says otherwise. Run it from the repository to use the repository's .env and data.
set -euo pipefail
repository="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$repository" && bash scripts/setup.sh telegram,discord,postgres)
exec "$repository/.venv/bin/editbot" "$@"
