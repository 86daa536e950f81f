#!/usr/bin/env bash
# Relay benchmark (issues #7 and #13; not part of the tests), side by side in one run on one
# PostgreSQL and one broker: outbox-bridge run (release), the Python peers in scripts/peers/ (a
# competent batch relay and the article's one-event relay) and the practical limits (PostgreSQL
# alone claiming and marking; librdkafka alone producing, and producing → reading for latency):
#   (a) drain of a committed backlog, (d) two bridge instances sharing it;
#   (b) single DDL statements at idle and (c) steady DDL load at each rate, latency from commit to
#       the record being readable by an independent consumer (and to marked, for the relays that
#       mark after the ack), what was left behind, CPU seconds and peak RSS;
#   instructions: where perf has no instruction counter (most VMs, this one too), the bridge and
#       the batch relay run once more under valgrind's callgrind (3 s idle, --callgrind-samples
#       single events, a drain of --callgrind-backlog), zeroed and dumped around each phase with
#       callgrind_control, per event net of the idle rate (needs valgrind, cc and objcopy);
#   memory: the bridge's peak RSS draining a large backlog with its shipped defaults.
# Each contestant's context switches and instructions per event (perf stat) are reported too:
# unlike seconds, they barely move with machine noise.
# It ends with markdown tables (relays x workloads, ratios against the goals) for the README, and
# a table of issue 13's goals; with a baseline, that table is before/after from the same run.
# The full default run takes about 10 minutes on 2 cores (579 s once the builds are done), more
# with a baseline. The machine is shared: run it under `nice -n 5`.
#
#   scripts/bench-relay.sh [--events 200000] [--tenants 1000] [--batch-size 1000] [--article-seconds 30]
#                          [--samples 1000] [--steady-seconds 60] [--rates 100,1000] [--writers 4]
#                          [--grace-seconds 5] [--memory-backlog 1000000]
#                          [--callgrind-samples 50] [--callgrind-backlog 2000]
#                          [--baseline-rev REV | --baseline-bridge BINARY] [--bridge-option ARG]...
#                          [--steady-writes ddl|emit]
#   scripts/bench-relay.sh --events 20000 --samples 100 --steady-seconds 5 --memory-backlog 0 --callgrind-samples 0   # quick (about a minute)
#   scripts/bench-relay.sh --baseline-rev f0e61c4   # before/after against main f0e61c4, same run
#
# --samples 0, --steady-seconds 0, --memory-backlog 0 and --callgrind-samples 0 skip those workloads.
# --baseline-rev REV builds outbox-bridge (release) from git revision REV into
# .build-baseline/<commit>/ (git archive of REV; git ignores .build-*; built once, reused) and runs
# it as one more contestant in every bridge workload (drain, latency, callgrind, memory), as
# --baseline-bridge BINARY does with a binary built elsewhere.
# --bridge-option ARG appends ARG to every bridge command line (both builds), for experiments:
#   --bridge-option --kafka-property=queue.buffering.max.kbytes=16384
# --steady-writes emit makes (c) write domain events through platform.emit() instead of DDL. On 2
# cores DDL writers reach only 275-777/s of the 1,000/s asked beside a relay (each statement's
# capture costs PostgreSQL as much CPU as a relay spends per event), so (c) at 1,000/s measures the
# machine's saturation, and how much CPU the relay leaves the writers, rather than the relay.
# Memory experiments with glibc's malloc: MALLOC_ARENA_MAX=1 scripts/bench-relay.sh … (the
# environment reaches every contestant). Results and what was tried: docs/relay-memory.md.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
scripts/install-deps.sh bench
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
swift build -c release --product outbox-bridge
swift build -c release --product relay-benchmark
# --baseline-rev REV becomes --baseline-bridge <that revision's release binary>.
arguments=()
while [ $# -gt 0 ]; do
    if [ "$1" = --baseline-rev ]; then
        [ $# -ge 2 ] || { echo "--baseline-rev needs a git revision" >&2; exit 2; }
        commit=$(git rev-parse --verify --quiet "$2^{commit}") || { echo "--baseline-rev: $2 is not a commit here" >&2; exit 2; }
        baseline="$repo_root/.build-baseline/$commit"
        if [ ! -x "$baseline/.build/release/outbox-bridge" ]; then
            rm -rf "$baseline" && mkdir -p "$baseline"
            git archive "$commit" | tar -x -C "$baseline"
            # The same dependency versions as this checkout (Package.resolved is not in git);
            # SwiftPM fetches them from its shared cache.
            if [ -f Package.resolved ]; then cp Package.resolved "$baseline/"; fi
            swift build -c release --product outbox-bridge --package-path "$baseline"
        fi
        arguments+=(--baseline-bridge "$baseline/.build/release/outbox-bridge")
        shift 2
    else
        arguments+=("$1")
        shift
    fi
done
set -- "${arguments[@]}"
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
