#!/usr/bin/env bash
# Builds lastframe and runs it on its embedded defaults with the demo stream.
# It prints a ready-to-paste curl line; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target lastframe
listen="${LASTFRAME_LISTEN:-127.0.0.1:8080}"
echo
echo "lastframe is starting on http://${listen} with a demo camera. In another terminal:"
echo
echo "  curl -s 'http://${listen}/snapshot?stream_name=demo'"
echo
exec ./build/src/app/lastframe serve --demo --listen "${listen}" "$@"
