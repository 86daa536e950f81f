# Sourced (not run) by the scripts that need PostgreSQL: uses the development services someone
# already started (a developer's), leaving them running, or starts them and stops them again
# when the sourcing script exits. Exports OUTBOX_BRIDGE_TEST_DATABASE_URL and friends.
# A sourcing script that sets its own EXIT trap calls stop_dev_services_we_started in it.
dev_services_started_here=false
stop_dev_services_we_started() {
    if [ "$dev_services_started_here" = true ]; then scripts/dev-services.sh stop; fi
}
if scripts/dev-services.sh status; then
    eval "$(scripts/dev-services.sh env)"
else
    eval "$(scripts/dev-services.sh start)"
    dev_services_started_here=true
fi
trap stop_dev_services_we_started EXIT
