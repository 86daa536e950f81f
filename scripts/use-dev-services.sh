# Sourced (not run) by the scripts that need PostgreSQL: uses the development services someone
# already started (a developer's), leaving them running, or starts them and stops them again
# when the sourcing script exits. Exports OUTBOX_BRIDGE_TEST_DATABASE_URL and friends.
if scripts/dev-services.sh status; then
    eval "$(scripts/dev-services.sh env)"
else
    eval "$(scripts/dev-services.sh start)"
    trap 'scripts/dev-services.sh stop' EXIT
fi
