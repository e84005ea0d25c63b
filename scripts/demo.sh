#!/usr/bin/env bash
# The whole system on this machine, no Pi needed: bash scripts/demo.sh [--seconds N] [--senders N]
set -euo pipefail
source "$(dirname "$0")/venv.sh"
exec "$PY" "$ROOT/scripts/demo.py" "$@"
