#!/usr/bin/env bash
# Set up everything the tests need, then lint and run them: bash scripts/test.sh [pytest args]
#
# Set-up: .venv with the pinned Python packages (scripts/venv.sh); the Debian packages the tests run
# for real (when root with apt, in one apt round; otherwise each missing one is named); syslog-ng
# unpacked from its .deb (installing it would remove rsyslog) and Node-RED from npm, each cached
# under ~/.cache once.
#
# With no arguments, two stages, each named as it starts: "tests" (the suite, which includes the
# interop, browser and Prometheus tiers) and "faults" (fault injection in network namespaces,
# root only). The exit code is that of a failing stage. With arguments, pytest runs just those.
set -euo pipefail
source "$(dirname "$0")/venv.sh"
cd "$ROOT"

missing=()
want() {  # want COMMAND PACKAGE...: the packages, if COMMAND is not on this machine
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing+=("${@:2}")
}
want socat socat                      # the fire-and-forget client test
want tc iproute2                      # ip netns and tc, for the faults stage
want rsyslogd rsyslog                 # tests/interop, and bench/bench_peer.py
want nc netcat-openbsd                # tests/server/test_framing.py
want npm nodejs npm                   # Node-RED, for tests/interop
want logrotate logrotate              # the SIGHUP test in tests/server/test_rotation.py
want promtool prometheus              # tests/monitoring
want chromium chromium                # tests/monitoring (the status page in a real browser)
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)  # tests/postgres
if [ "${#missing[@]}" -gt 0 ]; then
    need_apt "${missing[@]}" || true  # a test that needs what is still missing says so (and fails under CI)
fi
bash scripts/unpack_syslog_ng.sh >/dev/null || true
bash scripts/install_node_red.sh >/dev/null || true

"$PY" -m ruff check .
[ "$#" -gt 0 ] && exec "$PY" -m pytest "$@"
status=0
echo "== stage tests: the suite (with the interop, browser and Prometheus tiers)" >&2
"$PY" -m pytest || status=$?
echo "== stage faults: network namespaces, link faults, kill -9, a full disk" >&2
"$PY" -m pytest -m faults tests/faults || status=$?
exit "$status"
