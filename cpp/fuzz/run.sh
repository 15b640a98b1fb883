#!/usr/bin/env bash
# Builds the fuzz target of the core with Clang, libFuzzer, AddressSanitizer (with leak detection)
# and UndefinedBehaviorSanitizer, and runs it for a bounded time on a copy of the seed corpus.
#
#   bash cpp/fuzz/run.sh [seconds]     (default 600)
#
# Environment: FUZZ_BUILD_DIR (default build/fuzz), FUZZ_WORK_DIR (the working corpus and any
# crash files; default $FUZZ_BUILD_DIR/run), FUZZ_JOBS (build parallelism, default 2),
# FUZZ_ARGS (more libFuzzer options). Installs clang and libFuzzer from the Debian packages when
# clang++ is missing. Exits non-zero when the fuzzer reports a crash, a leak, a sanitizer error, a
# timeout or a violated contract; the input that caused it is left in the work directory.
set -euo pipefail

seconds=${1:-600}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
work=${FUZZ_WORK_DIR:-$build/run}

find_clang() {
  for c in clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then echo "$c"; return 0; fi
  done
  return 1
}

cxx=${CXX_FUZZ:-$(find_clang || true)}
if [ -z "$cxx" ]; then
  echo "run.sh: installing clang and libFuzzer (Debian packages)" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update
  # libFuzzer and the sanitizer runtimes of clang 14 (bookworm) are in libclang-rt-14-dev.
  $sudo apt-get install -y clang libclang-rt-14-dev || $sudo apt-get install -y clang
  cxx=$(find_clang)
fi

cmake -S "$root" -B "$build" \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMETAGLASSO_BUILD_FUZZERS=ON \
  -DMETAGLASSO_BUILD_TESTS=OFF \
  -DMETAGLASSO_USE_OPENMP=OFF \
  -DMETAGLASSO_SANITIZE=address,undefined
cmake --build "$build" --target metaglasso_fuzz -j "${FUZZ_JOBS:-2}"

# The fuzzer adds inputs to its corpus: work on a copy, so that the checked-in seeds stay small.
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here"/corpus/* "$here"/regressions/* "$work/corpus/" 2>/dev/null || true

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
# shellcheck disable=SC2086
"$build/cpp/fuzz/metaglasso_fuzz" "$work/corpus" \
  -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -detect_leaks=1 -max_len=4096 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${FUZZ_ARGS:-} || status=$?

# Inputs slower than 10 s (under the 30 s timeout) are reported, not failed.
for f in "$work"/artifacts/slow-unit-*; do
  [ -e "$f" ] && echo "run.sh: note: slow input $f" >&2
done
if [ "$status" -ne 0 ] || [ -n "$(find "$work/artifacts" -type f ! -name 'slow-unit-*')" ]; then
  echo "run.sh: the fuzzer found a problem (exit status $status); inputs in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
  exit 1
fi
echo "run.sh: no findings in ${seconds} s"
