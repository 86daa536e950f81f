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
swift test --skip-build --skip "$broker_outage_tests" "$@"
swift test --skip-build --no-parallel --filter "$broker_outage_tests" "$@"
