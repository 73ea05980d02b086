#!/usr/bin/env bash
# Runs every compiled test file (dist/test/**/*.test.js) one file at a time: several tests
# create network namespaces and iptables chains and must not interleave. Node 20's --test
# takes no glob, so the files are listed here. Extra args are passed to node --test.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files under dist/test (did the build run?)" >&2; exit 1; }
exec node --test --test-concurrency=1 --test-timeout=600000 "$@" "${files[@]}"
