#!/usr/bin/env bash
# Relay benchmark: drain throughput against PostgreSQL's own claim-and-mark limit, idle
# commit-to-ack latency and peak memory, measured side by side in one run (not part of the tests).
#
#   scripts/bench-relay.sh [--events 200000] [--tenants 100] [--samples 1000] [--batch-size 1000]
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scripts/install-deps.sh bench
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product outbox-bridge
swift build -c release --product relay-benchmark
# Services someone already started (a developer's) are used and left running.
if scripts/dev-services.sh status; then
    eval "$(scripts/dev-services.sh env)"
else
    eval "$(scripts/dev-services.sh start)"
    trap 'scripts/dev-services.sh stop' EXIT
fi
"$repo_root/.build/release/relay-benchmark" "$repo_root/.build/release/outbox-bridge" "$@"
