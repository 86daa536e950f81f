#!/usr/bin/env bash
# Relay benchmark, side by side in one run on one PostgreSQL and one broker (not part of the
# tests): drain throughput of outbox-bridge, of the Python peer relays in scripts/peers/ (a batch
# relay and the article's one-event relay) and of two bridge instances, against the practical
# limits (PostgreSQL alone claiming and marking; librdkafka alone producing), with CPU seconds and
# peak RSS per relay and a table of ratios; then idle commit-to-ack latency and peak memory.
#
#   scripts/bench-relay.sh [--events 200000] [--tenants 1000] [--samples 1000] [--batch-size 1000]
#                          [--article-seconds 30]
#   scripts/bench-relay.sh --events 20000 --samples 100    # a quick run (about a minute)
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
