# Sourced by demo.sh and test.sh: make .venv with the pinned development dependencies.
# Needs only python3 (3.11+); on Debian/Ubuntu/Raspberry Pi OS the venv module may be a separate
# package (python3-venv), installed here when we are root and apt is available.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "whc needs Python 3.11 or newer (found $(python3 --version 2>&1))" >&2; exit 2; }

need_apt() {  # install Debian packages if missing and we may; else say how
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "missing: $* (install with: sudo apt install $*)" >&2; return 1
    fi
}

if [ ! -x "$PY" ] || ! "$PY" -c 'import sys' 2>/dev/null; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        need_apt python3-venv
        python3 -m venv "$VENV"
    fi
fi
stamp="$VENV/.requirements-dev.txt"
if ! cmp -s "$ROOT/requirements-dev.txt" "$stamp"; then
    echo "setting up $VENV (pinned dependencies from requirements-dev.txt)..." >&2
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$ROOT/requirements-dev.txt" 2>&1 \
        | grep -v "is ignored" >&2 || true
    "$PY" -c 'import sense_emu, pytest' || { echo "installing dependencies failed" >&2; exit 1; }
    cp "$ROOT/requirements-dev.txt" "$stamp"
fi
