#ifndef OUTBOX_BRIDGE_CRDKAFKA_SHIM_H
#define OUTBOX_BRIDGE_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
