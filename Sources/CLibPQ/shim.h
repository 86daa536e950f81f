#ifndef OUTBOX_BRIDGE_CLIBPQ_SHIM_H
#define OUTBOX_BRIDGE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
