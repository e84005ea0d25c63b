#!/usr/bin/env bash
# Set up everything the tests need, then lint and run them: bash scripts/test.sh [pytest args]
# With no arguments, two stages: the suite, then "faults" (fault injection in network namespaces,
# root only, 1-2 minutes). With arguments, pytest runs just those.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"
command -v socat >/dev/null || need_apt socat || true  # for the fire-and-forget client test
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_apt postgresql || true  # for tests/postgres
command -v tc >/dev/null || need_apt iproute2 || true  # ip netns and tc, for the faults stage
# tests/interop (real third-party clients): rsyslog from apt; syslog-ng unpacked from its .deb (installing it
# would remove rsyslog); Node-RED from npm into ~/.cache/whc-node-red. nc for tests/server/test_framing.py.
command -v rsyslogd >/dev/null || [ -x /usr/sbin/rsyslogd ] || need_apt rsyslog || true
command -v nc >/dev/null || need_apt netcat-openbsd || true
command -v npm >/dev/null || need_apt nodejs npm || true
bash scripts/unpack_syslog_ng.sh >/dev/null || true
bash scripts/install_node_red.sh >/dev/null || true
command -v logrotate >/dev/null || need_apt logrotate || true  # for the SIGHUP test in tests/server/test_rotation.py
{ command -v promtool && command -v chromium; } >/dev/null || need_apt prometheus chromium || true  # tests/monitoring
"$PY" -m ruff check .
[ "$#" -gt 0 ] && exec "$PY" -m pytest "$@"
status=0
echo "== stage tests: the suite" >&2
"$PY" -m pytest || status=$?
echo "== stage faults: network namespaces, link faults, kill -9, a full disk" >&2
"$PY" -m pytest -m faults tests/faults || status=$?
exit "$status"
