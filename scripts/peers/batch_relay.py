#!/usr/bin/python3
"""A competent batch relay in Python, for the side-by-side benchmark (Sources/RelayBenchmark).

Per batch, in one transaction: claim up to 1,000 pending rows in id order with
`SELECT ... FOR UPDATE SKIP LOCKED`, produce them all (key = tenant_key, value = event_data as
stored), wait for every acknowledgement (flush), mark them processed with the topic, partition
and offset each ack reported in one UPDATE, and commit. `processed_at` is the UPDATE's
clock_timestamp(), not now(): now() is the transaction's start, i.e. the claim, and the
benchmark reads processed_at as the moment of marking. A row is marked only after its ack (at
least once, like OutboxBridge); a failed delivery aborts the batch so its rows stay pending.
Loops until no row is pending, then waits for a notification (LISTEN) or polls every 50 ms.

    /usr/bin/python3 scripts/peers/batch_relay.py --database-url URL --brokers HOST:PORT
"""
import sys

import psycopg2

from common import Stop, listen, parse_arguments, producer, wait_for_notification

BATCH_SIZE = 1000

CLAIM = """
    SELECT id, tenant_key, event_data::text FROM platform.schema_changes
    WHERE NOT processed AND NOT dead
    ORDER BY id LIMIT %s
    FOR UPDATE SKIP LOCKED
"""
MARK = """
    UPDATE platform.schema_changes AS s
    SET processed = true, processed_at = clock_timestamp(),
        kafka_topic = %s, kafka_partition = d.kafka_partition, kafka_offset = d.kafka_offset
    FROM unnest(%s::bigint[], %s::int[], %s::bigint[]) AS d(id, kafka_partition, kafka_offset)
    WHERE s.id = d.id
"""


def relay_batch(connection, kafka, topic):
    """Relays one batch; returns how many rows it marked (0: nothing pending)."""
    with connection.cursor() as cursor:
        cursor.execute(CLAIM, (BATCH_SIZE,))
        rows = cursor.fetchall()
        if not rows:
            connection.rollback()
            return 0
        ids, partitions, offsets, failures = [], [], [], []

        def delivered(error, message, row_id):
            if error is not None:
                failures.append(error)
            else:
                ids.append(row_id)
                partitions.append(message.partition())
                offsets.append(message.offset())

        for row_id, tenant_key, event_data in rows:
            kafka.produce(topic, key=tenant_key, value=event_data,
                          on_delivery=lambda error, message, row_id=row_id: delivered(error, message, row_id))
        kafka.flush()
        if failures:
            connection.rollback()
            print("batch_relay: %d deliveries failed (%s); batch left pending" % (len(failures), failures[0]),
                  file=sys.stderr)
            return 0
        cursor.execute(MARK, (topic, ids, partitions, offsets))
    connection.commit()
    return len(rows)


def main():
    arguments = parse_arguments("A batch relay with FOR UPDATE SKIP LOCKED (benchmark peer).")
    Stop.install()
    connection = psycopg2.connect(arguments.database_url)
    listen(connection, arguments.channel)
    kafka = producer(arguments.brokers)
    while not Stop.requested:
        if relay_batch(connection, kafka, arguments.topic) > 0:
            continue
        wait_for_notification(connection, 0.05)
    kafka.flush(10)
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
