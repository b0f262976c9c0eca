#!/usr/bin/env bash
# The whole test suite (CI runs exactly this): installs what is missing (Debian packages; the JS test clients with
# npm ci), then builds twice, once plainly and once with AddressSanitizer + UndefinedBehaviorSanitizer, and runs the
# unit tests (ctest) and the end-to-end tests (node's test runner against the real binary) on each build; then runs the
# libFuzzer targets briefly (the fuzz stage).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh --test
# the JS test clients (the AWS SDK for the DynamoDB API), pinned by tests/e2e/package-lock.json, from npm's registry
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
jobs=$(nproc)
# one test file at a time (each starts its own edgeproxy and origins); nodes older than 20 lack the flag: their default
node_flags=()
node --test-concurrency=1 -e 0 >/dev/null 2>&1 && node_flags=(--test-concurrency=1)
# no test may hang the suite (a crashed server, a stuck client): each gets at most 3 minutes
node --test-timeout=180000 -e 0 >/dev/null 2>&1 && node_flags+=(--test-timeout=180000)
status=0

run_suite() {
    local name=$1 dir=$2
    shift 2
    echo "== $name: build"
    cmake -S . -B "$dir" -DBUILD_TESTING=ON "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    echo "== $name: unit tests"
    (cd "$dir" && ctest --output-on-failure) || status=1
    echo "== $name: end-to-end tests"
    EDGEPROXY_BIN="$PWD/$dir/edgeproxy" node --test "${node_flags[@]}" tests/e2e/ || status=1
}

run_suite "release" build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
export ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DEDGEPROXY_SANITIZE=ON
unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS

# The libFuzzer targets (tests/fuzz: the item store's expressions and requests, the REST origin's JSON), briefly:
# built with clang (ASan + UBSan) in a build directory of their own, each run for 20 s on a copy of its seed corpus
# (the repository is not written; the store's LMDB files go to tmpfs when there is one). A crash, a leak, a sanitizer
# report or a hang fails the suite; the input that caused it is kept in build-fuzz/artifacts/.
fuzz_targets="fuzz_expr fuzz_request fuzz_rest_json" # tests/fuzz/CMakeLists.txt's
run_fuzz() {
    echo "== fuzz: build"
    CC=clang cmake -S . -B build-fuzz -DEDGEPROXY_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
    cmake --build build-fuzz -j"$jobs" --target $fuzz_targets >/dev/null
    mkdir -p build-fuzz/artifacts
    local tmp t
    tmp=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
    for t in $fuzz_targets; do
        echo "== fuzz: $t"
        cp -r "tests/fuzz/corpus/$t" "$tmp/$t"
        if ! TMPDIR="$tmp" UBSAN_OPTIONS=print_stacktrace=1 "build-fuzz/tests/fuzz/$t" -max_total_time=20 -timeout=10 \
            -max_len=4200 -dict="tests/fuzz/$t.dict" -artifact_prefix="build-fuzz/artifacts/$t-" "$tmp/$t" >"$tmp/$t.log" 2>&1; then
            tail -n 80 "$tmp/$t.log"
            status=1
        else
            grep -E '^Done [0-9]+ runs' "$tmp/$t.log" || true
        fi
    done
    rm -rf "$tmp"
}
run_fuzz

if [ $status -eq 0 ]; then echo "tests: all suites passed"; else echo "tests: FAILURES (see above)"; fi
exit $status
