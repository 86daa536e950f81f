#!/usr/bin/python3
"""The relay as the article (shared/reference/event-driven-postgres-article.txt) writes it, for
the side-by-side benchmark (Sources/RelayBenchmark). Not a relay to use: see below.

The article's worker, in autocommit, LISTENs and, for every notification, runs

    UPDATE platform.schema_changes SET processed = true, processed_at = now()
    WHERE event_data->>'event_id' = %s AND NOT processed RETURNING event_data

with the event id taken from the notification payload, then processes that one event.

Adaptation: OutboxBridge's capture (and platform.emit) send an EMPTY notification payload (a
wake-up call, not an event id), and a committed backlog produces no notifications at all for a
worker that starts afterwards. So on each wake-up (start, a notification, or the article's
"fallback to polling" every second) this worker repeatedly picks one pending event id with
`SELECT event_data->>'event_id' ... WHERE NOT processed ORDER BY id LIMIT 1` and runs the
article's UPDATE ... RETURNING for it, then produces that one event keyed by tenant and waits
for its acknowledgement (flush) before taking the next. Everything else is as written: one event
per statement and per round trip to the broker, autocommit.

The bug this reproduces (and OutboxBridge avoids): the row is marked processed BEFORE the event
is published, so a crash or a broker failure between the UPDATE and the ack loses the event for
good; and no topic/partition/offset is recorded.

    /usr/bin/python3 scripts/peers/article_relay.py --database-url URL --brokers HOST:PORT
"""
import json
import sys

import psycopg2

from common import Stop, listen, parse_arguments, producer, wait_for_notification

NEXT_PENDING = """
    SELECT event_data->>'event_id' FROM platform.schema_changes
    WHERE NOT processed AND NOT dead ORDER BY id LIMIT 1
"""
# The article's statement, unchanged except for the tenant key we also need to produce.
MARK = """
    UPDATE platform.schema_changes
    SET processed = true, processed_at = now()
    WHERE event_data->>'event_id' = %s AND NOT processed
    RETURNING event_data, tenant_key
"""


def drain(cursor, kafka, topic):
    while not Stop.requested:
        cursor.execute(NEXT_PENDING)
        row = cursor.fetchone()
        if row is None:
            return
        cursor.execute(MARK, (row[0],))
        marked = cursor.fetchone()
        if marked is None:
            continue  # someone else took it
        event_data, tenant_key = marked
        # psycopg2 decodes jsonb; the event is re-serialised to publish it.
        kafka.produce(topic, key=tenant_key, value=json.dumps(event_data))
        kafka.flush()  # wait for this event's ack before the next


def main():
    arguments = parse_arguments("The article's one-event-at-a-time relay (benchmark peer).")
    Stop.install()
    connection = psycopg2.connect(arguments.database_url)
    connection.autocommit = True
    listen(connection, arguments.channel)
    kafka = producer(arguments.brokers)
    cursor = connection.cursor()
    while not Stop.requested:
        drain(cursor, kafka, arguments.topic)
        # Block until a notification arrives (or poll again after a second).
        wait_for_notification(connection, 1.0)
    kafka.flush(10)
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
