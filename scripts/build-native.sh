#!/usr/bin/env bash
# Builds the proxy's SO_ORIGINAL_DST addon against the running Node's own headers, so
# node-gyp never tries to download them (this machine has no internet).
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=$(dirname "$(dirname "$(command -v node)")")
args=(rebuild --directory proxy/native --loglevel=warn)
if [ -f "$prefix/include/node/node_api.h" ]; then args+=(--nodedir="$prefix"); fi
exec npx --no-install node-gyp "${args[@]}"
