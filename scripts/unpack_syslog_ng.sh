#!/usr/bin/env bash
# Unpack Debian's syslog-ng into a cache folder, without installing it, and print that folder.
#
#   bash scripts/unpack_syslog_ng.sh [folder]     (default: ~/.cache/whc-syslog-ng)
#
# Installing syslog-ng-core would remove rsyslog (they conflict), so the interop tests run
# syslog-ng from the unpacked .deb instead: the binary is <folder>/usr/sbin/syslog-ng, with
# LD_LIBRARY_PATH=<folder>/usr/lib/x86_64-linux-gnu (or the machine's multiarch folder) and
# --module-path=<folder>/usr/lib/syslog-ng/<version>. Libraries the machine lacks are unpacked too.
# Needs apt-get (the package lists are refreshed once if the download fails). Nothing is installed.
set -euo pipefail
DEST="${1:-$HOME/.cache/whc-syslog-ng}"
if [ -x "$DEST/usr/sbin/syslog-ng" ]; then
    echo "$DEST"
    exit 0
fi
command -v apt-get >/dev/null || { echo "unpack_syslog_ng.sh needs apt-get (Debian or Ubuntu)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
packages=(syslog-ng-core)
for lib in $(apt-cache depends syslog-ng-core 2>/dev/null | sed -n 's/^ *Depends: \(lib[^ <>]*\)$/\1/p'); do
    dpkg -s "$lib" >/dev/null 2>&1 || packages+=("$lib")  # the ones the machine lacks
done
download() { (cd "$work" && apt-get download -qq "$@" >/dev/null 2>&1); }
if ! download "${packages[@]}"; then
    apt-get update -qq >/dev/null 2>&1 || true
    download "${packages[@]}" || { echo "apt-get download ${packages[*]} failed" >&2; exit 1; }
fi
mkdir -p "$DEST.tmp"
for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$DEST.tmp"
done
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "$DEST"
