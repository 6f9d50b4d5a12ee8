#!/usr/bin/env bash
# Builds lastframe three times, a normal build, an ASan+UBSan build and a
# TSan build, and runs every unit and end-to-end test in each. Installs what
# it needs first, and checks that everything the tests import or spawn is
# installed by that step (not merely present on this machine). After the
# normal build's tests, the benchmark harness runs once in its quick mode, so
# that it cannot rot, and every fuzz target runs for 30 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${JOBS:-2}"
./scripts/install-deps.sh
./scripts/check-test-deps.py
# The module map (ARCHITECTURE.md): no include may cross an arrow it forbids.
/usr/bin/python3 scripts/check-layering.py
# deploy/: Prometheus rules and their tests, the example config, the Grafana dashboard's metric names.
./scripts/check-deploy.sh
# Node packages of the tests, pinned by their lock files: npm ci when a lock file changed.
npm_ci() {
  if ! cmp -s "$1/package-lock.json" "$1/node_modules/.installed-from-lock"; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error &&
      cp package-lock.json node_modules/.installed-from-lock)
  fi
}
# The independent S3 server the tests run our S3 client against.
npm_ci tests/s3rver
# The AWS SDK for JavaScript v3 (tests/sdk_js): every package of its lock file
# must run on Debian 12's Node 18, the Node `make test` gets on a fresh machine.
node tests/sdk_js/check_engines.mjs
npm_ci tests/sdk_js

run_suite() {  # run_suite BUILD_DIR CTEST_ARGS -- CMAKE_ARGS...
  local dir="$1"; shift
  local ctest_args=()
  while [ "$1" != "--" ]; do ctest_args+=("$1"); shift; done
  shift
  echo "== configure ${dir}"
  cmake -S . -B "${dir}" -G Ninja "$@" >/dev/null
  echo "== build ${dir}"
  cmake --build "${dir}" -j "${jobs}"
  echo "== test ${dir}"
  (cd "${dir}" && ctest --output-on-failure --no-tests=error -j "${jobs}" --timeout 300 "${ctest_args[@]}")
}

# Everything, the heavy suites (label "heavy": tests/abuse) included, once.
run_suite build -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== bench/run.py --quick (the harness works; its figures are not kept)"
./bench/run.py --quick --runs 1 --time-limit 300
# Every parser that takes bytes from outside, fuzzed with ASan+UBSan on its
# seed corpus, 30 s each (FUZZ_SECONDS; make fuzz runs longer): FUZZING.md.
echo "== fuzz (scripts/fuzz.sh)"
./scripts/fuzz.sh "${FUZZ_SECONDS:-30}"

# Sanitizers: any report fails the test that triggered it. The spawned server
# binary is the instrumented one too, so end-to-end tests check it as well.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_suite build-asan -LE heavy -- -DCMAKE_BUILD_TYPE=Debug -DLASTFRAME_SANITIZE=ON -DLASTFRAME_BENCHMARKS=OFF

# Threads: the I/O strands, producer threads, worker pool, warm decoders and
# caches all meet in the end-to-end tests, whose server is instrumented too.
# tests/tsan.supp: FFmpeg's frame threads order their buffers with atomics TSan cannot see.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}"
run_suite build-tsan -LE heavy -- -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLASTFRAME_SANITIZE_THREAD=ON -DLASTFRAME_BENCHMARKS=OFF
