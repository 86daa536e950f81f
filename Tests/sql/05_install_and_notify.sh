#!/usr/bin/env bash
# Check 05 (shell, needs several psql sessions): idempotent re-install, install into a schema
# whose name has quotes/spaces/semicolons, refusal of unsafe names and of a second install in the
# same database, and the pg_notify wake-up (one per transaction, none on rollback).
# Usage: Tests/sql/05_install_and_notify.sh BASE_URL   (run by scripts/test-capture.sh)
set -euo pipefail
base_url=$1
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
install() { local db=$1 schema=$2 f; for f in sql/0*.sql; do psql_ -v schema="$schema" -d "$base_url/$db" -f "$f" || return 1; done; }
q() { psql -X -At -v ON_ERROR_STOP=1 -d "$base_url/$1" -c "$2"; }
# A file of this run's own: the version matrix runs this check on other servers at the same
# time, and a shared /tmp name let one run empty the file another was reading.
err=$(mktemp)
trap 'rm -f "$err"' EXIT

db=capture_05
psql_ -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_ -d "$base_url/postgres" -c "DROP DATABASE IF EXISTS capture_05b" -c "CREATE DATABASE capture_05b"

# 1. Hostile but legal schema name, installed twice: the second run is a no-op.
hostile='out"box; sch*/ema ü'
install $db "$hostile" >/dev/null
before=$(q $db "SELECT md5(string_agg(pg_get_functiondef(p.oid), '' ORDER BY proname)) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '${hostile//\'/\'\'}'")
out=$(install $db "$hostile")
migrations=(sql/0*.sql)
[ "$(grep -c 'already applied, skipping' <<<"$out")" = ${#migrations[@]} ] || fail "re-install not skipped: $out"
after=$(q $db "SELECT md5(string_agg(pg_get_functiondef(p.oid), '' ORDER BY proname)) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = '${hostile//\'/\'\'}'")
[ "$before" = "$after" ] || fail "re-install changed functions"
expected_versions=$(printf '%s\n' "${migrations[@]}" | sed -E 's#^sql/0*([0-9]+)_.*#\1#' | paste -sd,)
[ "$(q $db 'SELECT string_agg(version::text, $$,$$ ORDER BY version) FROM "out""box; sch*/ema ü".schema_migrations')" = "$expected_versions" ] || fail "migration ledger"

# Capture works into the hostile schema, and objects in it are not captured.
psql_ -d "$base_url/$db" -c 'CREATE SCHEMA tenant_5' -c 'CREATE TABLE tenant_5.t (id int)' -c 'CREATE TABLE "out""box; sch*/ema ü".inside (id int)'
[ "$(q $db 'SELECT string_agg(event_data->>$$command$$, $$,$$ ORDER BY id) FROM "out""box; sch*/ema ü".schema_changes')" = "CREATE SCHEMA,CREATE TABLE" ] \
    || fail "capture into hostile schema"

# 2. A second install into another schema of the same database is refused (event triggers are
# per database); the existing install keeps working.
if install $db platform >/dev/null 2>"$err"; then fail "second install accepted"; fi
grep -q 'only one install per database' "$err" || fail "second install: wrong error: $(cat "$err")"
psql_ -d "$base_url/$db" -c 'CREATE TABLE tenant_5.t2 (id int)'
[ "$(q $db 'SELECT count(*) FROM "out""box; sch*/ema ü".schema_changes')" = 3 ] || fail "capture after refused second install"

# 3. Unsafe names are refused clearly and leave nothing behind.
for bad in 'bad$name' 'pg_mine' "$(printf 'x%.0s' {1..64})"; do
    if install capture_05b "$bad" >/dev/null 2>"$err"; then fail "schema name '$bad' accepted"; fi
    grep -q 'outbox-bridge: schema name\|outbox-bridge: schema .* is reserved' "$err" || fail "'$bad': unclear error: $(cat "$err")"
done
[ "$(q capture_05b "SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname NOT IN ('public', 'information_schema')")" = 0 ] \
    || fail "refused install left a schema behind"

# 4. Wake-up: one notification per committed transaction (folded), none for rollback, on the
# configured channel, with an empty payload.
notify_out=$(psql -X -d "$base_url/$db" 2>&1 <<'SQL'
LISTEN outbox_bridge;
BEGIN; CREATE TABLE tenant_5.n1 (id int); CREATE TABLE tenant_5.n2 (id int); ALTER TABLE tenant_5.n1 ADD COLUMN v int; COMMIT;
SELECT 'after-commit';
BEGIN; CREATE TABLE tenant_5.n3 (id int); ROLLBACK;
SELECT 'after-rollback';
UPDATE "out""box; sch*/ema ü".settings SET notify_channel = 'Custom Channel';
LISTEN "Custom Channel";
CREATE TABLE tenant_5.n4 (id int);
SELECT 'after-custom';
SQL
)
[ "$(grep -c 'Asynchronous notification "outbox_bridge"' <<<"$notify_out")" = 1 ] || fail "expected exactly one outbox_bridge notification: $notify_out"
[ "$(grep -c 'Asynchronous notification "Custom Channel"' <<<"$notify_out")" = 1 ] || fail "custom channel: $notify_out"
grep -q 'with payload' <<<"$notify_out" && fail "notification carried a payload: $notify_out"
echo 'check 05 passed'
