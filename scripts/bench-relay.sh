#!/usr/bin/env bash
# Relay benchmark (issue #7; not part of the tests), side by side in one run on one PostgreSQL and
# one broker: outbox-bridge run (release), the Python peers in scripts/peers/ (a competent batch
# relay and the article's one-event relay) and the practical limits (PostgreSQL alone claiming and
# marking; librdkafka alone producing, and producing → reading for latency):
#   (a) drain of a committed backlog, (d) two bridge instances sharing it;
#   (b) single DDL statements at idle and (c) steady DDL load at each rate, latency from commit to
#       the record being readable by an independent consumer (and to marked, for the relays that
#       mark after the ack), what was left behind, CPU seconds and peak RSS;
#   memory: the bridge's peak RSS draining a large backlog with its shipped defaults.
# Each contestant's context switches and instructions per event (perf stat) are reported too:
# unlike seconds, they barely move with machine noise.
# It ends with markdown tables (relays x workloads, ratios against the goals) for the README.
# The full default run takes about 10 minutes on 2 cores (579 s once the builds are done).
#
#   scripts/bench-relay.sh [--events 200000] [--tenants 1000] [--batch-size 1000] [--article-seconds 30]
#                          [--samples 1000] [--steady-seconds 60] [--rates 100,1000] [--writers 4]
#                          [--grace-seconds 5] [--memory-backlog 1000000]
#   scripts/bench-relay.sh --events 20000 --samples 100 --steady-seconds 5 --memory-backlog 0   # quick (about a minute)
#
# --samples 0, --steady-seconds 0 and --memory-backlog 0 skip those workloads.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scripts/install-deps.sh bench
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product outbox-bridge
swift build -c release --product relay-benchmark
. scripts/use-dev-services.sh
# With several CPUs the harness (its consumer, its polling loops, the mock broker) runs on the
# last one and the contestants on the others, so it does not compete with them for a core.
cpus=$(nproc)
pin=()
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
    export RELAY_BENCHMARK_CONTESTANT_CPUS="0-$((cpus - 2))"
    pin=(taskset -c "$((cpus - 1))")
fi
mkdir -p "$repo_root/.dev"
"${pin[@]}" "$repo_root/.build/release/relay-benchmark" "$repo_root/.build/release/outbox-bridge" "$@" \
    | tee "$repo_root/.dev/bench-relay.txt"
/usr/bin/python3 scripts/bench-chart.py "$repo_root/.dev/bench-relay.txt" docs/bench-relay.svg
