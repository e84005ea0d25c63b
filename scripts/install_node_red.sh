#!/usr/bin/env bash
# Install the pinned Node-RED from npm into a cache folder outside the repo, once, and print that folder.
#
#   bash scripts/install_node_red.sh [folder]     (default: ~/.cache/whc-node-red)
#
# Used by the interop tests (tests/interop), which run <folder>/node_modules/node-red/red.js with node.
# Needs node (18.5 or newer) and npm. A folder that already has this version is reused.
set -euo pipefail
VERSION=4.1.15  # Node-RED 5 needs node 22; Debian 12 and this project's machines have node 18-20
DEST="${1:-$HOME/.cache/whc-node-red}"
installed() {
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
        "$DEST/node_modules/node-red/package.json" "$VERSION" 2>/dev/null
}
if ! installed; then
    command -v npm >/dev/null || { echo "install_node_red.sh needs npm (apt install npm)" >&2; exit 1; }
    mkdir -p "$DEST"
    npm install --prefix "$DEST" --no-audit --no-fund --omit=dev --loglevel=error "node-red@$VERSION" >&2
    installed || { echo "node-red $VERSION did not install into $DEST" >&2; exit 1; }
fi
echo "$DEST"
