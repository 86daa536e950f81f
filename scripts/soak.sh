#!/usr/bin/env bash
# The long fault-injection soak: the test suite's SoakTests run for longer.
#
#   scripts/soak.sh                  # 30 minutes of faults (then drain, kcat check and audit)
#   scripts/soak.sh --seconds 300    # 5 minutes
#   scripts/soak.sh --seed 1234      # repeat a run's faults and statements (its seed is printed)
#
# Mixed DDL and platform.emit events from 100 tenants while the bridge is killed, stopped,
# cut off from PostgreSQL, doubled, and its broker taken down, slowed and made to fail produce
# requests; see Tests/RelayTests/SoakTests.swift. Services are started like scripts/test.sh
# starts them (and stopped again if this script started them).
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

seconds=1800
seed=
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
        --seed) seed=${2:?--seed needs a value}; shift 2 ;;
        *) echo "usage: $0 [--seconds N] [--seed N]" >&2; exit 2 ;;
    esac
done
case "$seconds" in ''|*[!0-9]*) echo "soak: --seconds expects a whole number, got $seconds" >&2; exit 2 ;; esac

scripts/install-deps.sh test
command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"

. scripts/use-dev-services.sh

swift build --build-tests
export SOAK_SECONDS=$seconds
if [ -n "$seed" ]; then export SOAK_SEED=$seed; fi
mkdir -p .dev
log=.dev/soak-$(date +%Y%m%d-%H%M%S).log
status=0
swift test --skip-build --filter SoakTests >"$log" 2>&1 || status=$?
grep -E '^soak:|✔|✘' "$log" || true
echo "soak: exit $status; full log in $log"
exit "$status"
