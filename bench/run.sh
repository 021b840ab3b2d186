#!/usr/bin/env bash
# bench/run.sh -- the expiry-bridge benchmark, everything in one go (~6 min on
# 2 cores). Not a test: see bench/README.md for the scenarios and how to read
# the output, bench/BASELINES.md for the references.
#
#   bench/run.sh [--runs N] [--only burst,naive,latency,memory,expiry] [bench.py options]
#   bench/run.sh --kafka real [--runs N]   the same against a real 3-broker Kafka
#                                          (burst, latency, 1M expiry by default)
#
# Builds a Release tree in build-bench/, then bench/bench.py starts
# redis-server, the mock Kafka, the bridge and the bench tools, measures, and
# writes bench/results/summary.txt and summary.json (raw data and every log
# under bench/results/<timestamp>/). Exit 0: every target met; 1: a check of
# what was measured failed (lost events, wrong counts) or the setup broke;
# 2: all checks held but some target was missed (the summary says which).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build="$root/build-bench"
results="$here/results"
stamp=$(date +%Y%m%d-%H%M%S)
rundir="$results/$stamp"
mkdir -p "$rundir"
pidfile="$rundir/pids"
: >"$pidfile"
driver_pid=""

# Stop what we started, by PID, on every exit path: the driver first (it
# stops its own children), then any child it registered that is still alive
# and still the same process (same start time), in case the driver died hard.
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n "$driver_pid" ]] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$driver_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$driver_pid" 2>/dev/null || true
    fi
    while read -r pid start; do
        [[ -r /proc/$pid/stat ]] || continue
        now=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)
        [[ "$now" == "$start" ]] || continue
        kill -TERM "$pid" 2>/dev/null || true
        sleep 0.2
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    done <"$pidfile"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "[bench] building $build (Release)"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$rundir/cmake.log" 2>&1 ||
    { tail -20 "$rundir/cmake.log"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target expiry-bridge eb_mock_kafka bench_sub_count \
    bench_load bench_kafka_ref >>"$rundir/cmake.log" 2>&1 ||
    { tail -40 "$rundir/cmake.log"; exit 1; }

# --kafka real: the broker jars (resolved once into a cache outside the repo).
for arg in "$@"; do
    if [[ "$arg" == real && "${prev:-}" == --kafka ]] || [[ "$arg" == --kafka=real ]]; then
        echo "[bench] real Kafka: scripts/fetch-kafka.sh"
        "$root/scripts/fetch-kafka.sh" >/dev/null || exit 1
    fi
    prev=$arg
done

for tool in redis-server /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "[bench] $tool not found" >&2; exit 1; }
done

# Background + wait, so the trap runs (and stops the children) on INT/TERM.
BENCH_PIDFILE="$pidfile" PYTHONPATH="$root/tests/support" /usr/bin/python3 -u \
    "$here/bench.py" --build "$build" --rundir "$rundir" --results "$results" "$@" &
driver_pid=$!
set +e
wait "$driver_pid"
rc=$?
set -e
driver_pid=""
exit "$rc"
