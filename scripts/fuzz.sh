#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz: clang++, ASan+UBSan, see
# FUZZING.md) and runs each for SECONDS (default 30) on a copy of its seed
# corpus (fuzz/corpus/TARGET, with fuzz/TARGET.dict), one after the other.
# Fails if any target finds a crash, a leak, undefined behaviour, a broken
# invariant, a hang or a runaway allocation. Each target's log, the inputs it
# added and what it found (crash-*, leak-*, timeout-*, oom-*) are kept in
# build-fuzz/fuzz-out/TARGET/; the tree's corpus is never written.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=N)
#
# LASTFRAME_BUILD_LOCK=FILE: take this flock(1) lock around the build (a
# machine shared by several builds).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
[ $# -gt 0 ] && shift
jobs="${JOBS:-2}"
build=build-fuzz
lock=()
[ -n "${LASTFRAME_BUILD_LOCK:-}" ] && lock=(flock "${LASTFRAME_BUILD_LOCK}")

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz/*.cpp; do targets+=("$(basename "${f}" .cpp)"); done
fi

echo "== configure ${build}"
cmake -S . -B "${build}" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLASTFRAME_FUZZ=ON -DLASTFRAME_BENCHMARKS=OFF >/dev/null
echo "== build ${build}"
"${lock[@]}" cmake --build "${build}" -j "${jobs}" --target fuzz_targets

# Any report stops the target and leaves its input behind.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
printf '%-16s %10s %8s %8s %7s  %s\n' target runs cov ft corpus result
for t in "${targets[@]}"; do
  out="${build}/fuzz-out/${t}"
  rm -rf "${out}"
  mkdir -p "${out}/corpus"
  cp -R "fuzz/corpus/${t}/." "${out}/corpus/"  # every target has seeds: a missing folder fails
  dict=()
  [ -f "fuzz/${t}.dict" ] && dict=("-dict=fuzz/${t}.dict")
  result=ok
  # -timeout: an input that takes this long is a hang; -rss_limit_mb: a runaway allocation.
  if ! "${build}/fuzz/fuzz_${t}" -max_total_time="${seconds}" -timeout=25 -rss_limit_mb=3072 \
      -print_final_stats=1 -artifact_prefix="${out}/" "${dict[@]}" "${out}/corpus" \
      >"${out}/log" 2>&1; then
    result="FAILED (${out}/log)"
    failed+=("${t}")
  fi
  done_line=$(grep -a -E '^#[0-9]+[[:space:]]+DONE' "${out}/log" | tail -1 || true)
  runs=$(grep -a 'stat::number_of_executed_units' "${out}/log" | awk '{print $2}' || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"${done_line}")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"${done_line}")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"${done_line}")
  printf '%-16s %10s %8s %8s %7s  %s\n' "${t}" "${runs:--}" "${cov:--}" "${ft:--}" "${corp:--}" \
    "${result}"
done

if [ ${#failed[@]} -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "== ${t}: what it found"
    grep -a -E -A30 'ERROR: |FUZZ_CHECK|runtime error|terminate called' "${build}/fuzz-out/${t}/log" |
      head -60 || tail -40 "${build}/fuzz-out/${t}/log"
    ls "${build}/fuzz-out/${t}" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true
  done
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each: nothing found"
