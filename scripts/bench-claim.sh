#!/usr/bin/env bash
# Measures one claim of 1,000 events among 20 tenants with and without a tenant that waits for a
# retry holding 100,000 pending events older than everyone else's (issue 12: goal at most 1.5x).
# It runs the real claim (OutboxStore.claimPending) against a throwaway PostgreSQL, 25 claims
# each, and prints the medians and their ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/use-dev-services.sh
export PATH=/opt/swift/usr/bin:$PATH
swift build --build-tests
OUTBOX_BRIDGE_MEASURE_CLAIM=1 swift test --skip-build --filter measureClaimWithAWaitingBacklog 2>&1 | grep '^claim of'
