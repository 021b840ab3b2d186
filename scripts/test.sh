#!/usr/bin/env bash
# scripts/test.sh -- the test command: installs what the tests need on Debian 12,
# fetches what Debian does not ship into a cache outside the repository
# (helm, the CloudEvents SDKs, the Java consumer's Maven artifacts:
# scripts/fetch-helm.sh, scripts/fetch-sdks.sh; $EB_CACHE), builds with
# warnings as errors, runs every test layer (unit, integration, e2e, fuzz
# corpus replay, schema, helm, sdk), then builds again with ASan+UBSan and
# runs the suite again without the layers that exercise no C code of ours,
# then builds the libFuzzer targets.
#
#   scripts/test.sh            everything (what CI runs)
#   scripts/test.sh --quick    the plain build's suite only
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$EB_ROOT"

eb_install .ci/packages-build.txt .ci/packages-test.txt
eb_say "fetching helm, the CloudEvents SDKs and Maven artifacts (cache: $EB_CACHE)"
scripts/fetch-helm.sh >/dev/null
scripts/fetch-sdks.sh
# Every test that needs a fetched tool now fails instead of skipping without it.
export EB_REQUIRE_FETCHED=1

eb_say "build (gcc, -Werror)"
eb_build build
eb_say "test suite"
ctest --test-dir build --output-on-failure --timeout 900

[ "${1:-}" = "--quick" ] && exit 0

eb_say "build with ASan+UBSan"
eb_build build-asan -DEB_SANITIZE=address,undefined -DEB_BUILD_BENCH=OFF
eb_say "test suite under ASan+UBSan"
# helm and sdk run no C code of ours beyond what the other layers run (the
# SDK tests' bridge is the one integration tests already run sanitized), and
# the Java consumer is Java: the plain build's pass covers them.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure --timeout 900 -LE 'helm|sdk|java'

eb_say "libFuzzer targets (clang, 20 s each)"
targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
CC=clang cmake -S . -B build-fuzz -DEB_WERROR=ON -DEB_BUILD_FUZZERS=ON -DEB_BUILD_BENCH=OFF \
    -DEB_BUILD_EXAMPLES=OFF -DEB_SANITIZE=address,undefined >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target $targets
for t in $targets; do
    name=${t#fuzz_}
    # New inputs go to a scratch dir; the committed corpus only seeds.
    mkdir -p "build-fuzz/corpus-$name"
    "build-fuzz/tests/fuzz/$t" -max_total_time=20 -timeout=10 -rss_limit_mb=2048 \
        "build-fuzz/corpus-$name" "tests/fuzz/corpus/$name" >"build-fuzz/$t.log" 2>&1 ||
        { tail -50 "build-fuzz/$t.log"; exit 1; }
    grep -o 'DONE.*cov: [0-9]*' "build-fuzz/$t.log" | tail -1
done
eb_say "all tests passed"
