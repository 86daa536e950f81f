#!/usr/bin/env bash
# Runs the whole test suite against real services: a throwaway PostgreSQL 15 cluster and
# librdkafka's mock cluster (started in-process by the tests). Fails on any compiler warning
# in the project's own code.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

scripts/install-deps.sh test
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"

. scripts/use-dev-services.sh

build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log"
if grep -E "^$repo_root/(Sources|Tests)/.*(warning|error):" "$build_log" | sort -u | grep .; then
    echo "test: the build has warnings in the project's own code (listed above)" >&2
    exit 1
fi
# Tests that take a mock broker down and up again run alone, after the rest: librdkafka 2.0.2's
# mock cluster re-binds the broker's old port when it comes back and aborts the whole process if
# that port was taken meanwhile, which a busy parallel run makes likely. The fault-injection
# soak is one of them; here it runs its short version (SOAK_SECONDS, default 60 s of faults).
broker_outage_tests='brokerDownThenUp|stopWithBrokerDown|metricsAndHealth|recordProducedWhileTheBrokerIsDownIsDeliveredOnceItIsUp|shutdownFailsWaitersInsteadOfLeavingThemHanging|SoakTests'
#
# Each phase runs under a watchdog: a test that hangs would otherwise stall the run until CI's
# own limit with nothing to show why. Past its limit the watchdog names the tests that started
# and never finished, prints every thread of the test process, and fails the run.
descendants() {
    local child
    for child in $(pgrep -P "$1"); do
        echo "$child"
        descendants "$child"
    done
}
run_bounded() {
    local limit=$1
    shift
    local log
    log=$(mktemp)
    # Line-buffered, so the log is current when the watchdog reads it.
    stdbuf -oL -eL "$@" >"$log" 2>&1 &
    local run=$!
    tail -n +1 -f --pid="$run" "$log" &
    local printer=$!
    (
        set +e
        for ((second = 0; second < limit; second++)); do
            kill -0 "$run" 2>/dev/null || exit 0
            sleep 1
        done
        {
            echo "test: still running after ${limit}s. Started and never finished:"
            sed -n 's/^◇ Test \(.*\) started\.$/\1/p' "$log" | grep -vx run | grep -v '^case passing' | sort >"$log.started"
            sed -n 's/^[✔✘] Test \(.*\) \(passed\|failed\) after .*$/\1/p' "$log" | sed 's/ with [0-9]* test cases\{0,1\}$//' | sort >"$log.ended"
            comm -23 "$log.started" "$log.ended" | sed 's/^/  /'
            for pid in $(descendants "$run"); do
                grep -q 'PackageTests.xctest' "/proc/$pid/cmdline" 2>/dev/null || continue
                echo "test: threads of the test process $pid:"
                gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)'
            done
        } >&2
        kill -KILL $(descendants "$run") 2>/dev/null
    ) &
    local watchdog=$!
    local status=0
    wait "$run" || status=$?
    wait "$printer" "$watchdog" || true
    rm -f "$log" "$log.started" "$log.ended"
    return "$status"
}
run_bounded "${TEST_PHASE_LIMIT_SECONDS:-1500}" swift test --skip-build --skip "$broker_outage_tests" "$@"
run_bounded "${TEST_PHASE_LIMIT_SECONDS:-1500}" swift test --skip-build --no-parallel --filter "$broker_outage_tests" "$@"
