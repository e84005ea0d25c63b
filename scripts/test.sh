#!/usr/bin/env bash
# Set up everything the tests need, then lint and run them: bash scripts/test.sh [pytest args]
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
command -v socat >/dev/null || need_apt socat || true  # for the fire-and-forget client test
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt postgresql || true  # for tests/postgres
{ command -v promtool && command -v chromium; } >/dev/null || need_apt prometheus chromium || true  # tests/monitoring
"$PY" -m ruff check .
exec "$PY" -m pytest "$@"
