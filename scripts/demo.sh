#!/usr/bin/env bash
# Builds lastframe and runs it on its embedded defaults with the demo stream.
# It prints a ready-to-paste curl line (with the viewer key made at the first
# run, from DATA_DIR/initial-keys.txt) and the dashboard's address; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "${JOBS:-2}" --target lastframe
bin=./build/src/app/lastframe
listen="${LASTFRAME_LISTEN:-127.0.0.1:8080}"
data="${LASTFRAME_DATA_DIR:-./lastframe-data}"
header=""
signin="(no sign-in: --auth off)"
if [ "${LASTFRAME_AUTH:-on}" != "off" ]; then
  # The first run's keys: an admin and a viewer key (nothing is made when keys exist).
  "${bin}" keys init --data-dir "${data}" >/dev/null 2>&1 || true
  token=$(awk '$1 == "viewer" { print $2 }' "${data}/initial-keys.txt" 2>/dev/null || true)
  if [ -n "${token}" ]; then
    header="-H 'Authorization: Bearer ${token}' "
    signin="and sign in with the viewer key ${token}"
  else
    signin="and sign in with an API key (${bin} keys create --role viewer)"
    header="-H 'Authorization: Bearer <a viewer key: ${bin} keys create --role viewer>' "
  fi
fi
echo
echo "lastframe is starting on http://${listen} with a demo camera. In another terminal:"
echo
echo "  curl -s ${header}'http://${listen}/snapshot?stream_name=demo'"
echo
echo "Or open the dashboard in a browser: http://${listen}/ ${signin}"
echo
exec "${bin}" serve --demo --listen "${listen}" --data-dir "${data}" "$@"
