#ifndef OUTBOX_BRIDGE_CRDKAFKA_SHIM_H
#define OUTBOX_BRIDGE_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Swift cannot call C variadic functions: this pushes one (error, response delay) tuple onto a
 * mock broker's stack for one kind of request. */
static inline rd_kafka_resp_err_t
outbox_bridge_mock_broker_push_request_error_rtt(rd_kafka_mock_cluster_t *mcluster, int32_t broker_id,
                                                 int16_t api_key, rd_kafka_resp_err_t error, int rtt_ms) {
        return rd_kafka_mock_broker_push_request_error_rtts(mcluster, broker_id, api_key, 1, error, rtt_ms);
}
#endif
