#!/bin/sh
# Markdown documentation per tenant, kept up to date by `outbox-bridge exec`:
#
#   outbox-bridge exec --group markdown-docs -- examples/markdown-docs.sh /srv/docs
#
# For each event with a table shape it writes DIR/<tenant>/<schema>.<table>.md (columns, types,
# nullability, defaults, comments) and DIR/<tenant>/README.md, an index of the tenant's pages.
# Dropped and renamed tables lose their page. Every file is rewritten whole from the event, and
# replaced atomically, so running the same event twice (a redelivery) changes nothing.
# Needs jq. Exits non-zero on a problem, which makes exec retry and then dead-letter the event.
set -eu

out=${1:?usage: markdown-docs.sh OUTPUT_DIRECTORY}
event=$(cat)
tenant=${OUTBOX_TENANT:-}
[ -n "$tenant" ] || exit 0 # events without a tenant have no tenant documentation

# A name from the event as a file name: nothing that could leave the directory.
safe() {
    printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_' | sed 's/^\.*//'
}

dir="$out/$(safe "$tenant")"
mkdir -p "$dir"

# Replaces $1 with standard input, atomically.
write_file() {
    tmp="$1.tmp.$$"
    cat > "$tmp"
    mv -f "$tmp" "$1"
}

has_shape=$(printf '%s' "$event" | jq -r 'if (.table.columns // null) != null then "yes" else "no" end')
if [ "$has_shape" = yes ]; then
    schema=$(printf '%s' "$event" | jq -r '.table.schema')
    name=$(printf '%s' "$event" | jq -r '.table.name')
    page="$dir/$(safe "$schema.$name").md"
    dropped=$(printf '%s' "$event" | jq -r '
        if (.command | startswith("DROP TABLE")) or .drift == "dropped" then "yes" else "no" end')
    renamed_from=$(printf '%s' "$event" | jq -r '.changes.table_renamed.old // empty')
    if [ -n "$renamed_from" ]; then
        rm -f "$dir/$(safe "$schema.${renamed_from##*.}").md"
    fi
    if [ "$dropped" = yes ]; then
        rm -f "$page"
    else
        printf '%s' "$event" | jq -r '
            def cell: tostring | gsub("\\|"; "\\|") | gsub("\n"; " ");
            "# \(.table.schema).\(.table.name)\n",
            (if .table.comment then "\(.table.comment)\n" else empty end),
            "Primary key: \(if (.table.primary_key // []) == [] then "none" else (.table.primary_key | join(", ")) end)\n",
            "| Column | Type | Nullable | Default | Comment |",
            "|---|---|---|---|---|",
            (.table.columns[] |
                "| \(.name | cell) | \(.type | cell) | \(if .nullable then "yes" else "no" end) | \(.default // "" | cell) | \(.comment // "" | cell) |"),
            "",
            "_Last change: \(.command) at \(.occurred_at) (event \(.event_id))._"
        ' | write_file "$page"
    fi
fi

# The tenant's index, from the pages that exist now.
{
    printf '# Schema of tenant %s\n\n' "$tenant"
    for file in "$dir"/*.md; do
        [ -e "$file" ] || continue
        base=${file##*/}
        [ "$base" = README.md ] && continue
        printf -- '- [%s](%s)\n' "${base%.md}" "$base"
    done
} | write_file "$dir/README.md"
