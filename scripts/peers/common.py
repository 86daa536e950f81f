"""Shared plumbing of the benchmark's Python peer relays (scripts/peers/): arguments, SIGTERM,
and a producer configured like OutboxBridge's `outbox-bridge run` (idempotent, acks=all, Java's
partitioner, linger.ms=0, message.timeout.ms=30000: KafkaProducerConfiguration's defaults plus
RelayApplication.producerDefaults), so the comparison is about the relay loop, not the producer
settings.

Needs Debian's python3-psycopg2 and python3-confluent-kafka (scripts/install-deps.sh bench);
run with /usr/bin/python3.
"""
import argparse
import select
import signal

import confluent_kafka

TOPIC = "schema-changes"


class Stop:
    """Set by SIGTERM/SIGINT; the relay loops check it between batches and exit cleanly."""

    requested = False

    @classmethod
    def install(cls):
        def handler(_signum, _frame):
            cls.requested = True

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        # A parent may start us with these blocked (a Swift process's threads block them to
        # read them from a dispatch source, and the mask is inherited): unblock them.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def parse_arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", default=TOPIC)
    parser.add_argument("--channel", default=None,
                        help="LISTEN channel (default: platform.settings.notify_channel)")
    return parser.parse_args()


def producer(brokers):
    return confluent_kafka.Producer({
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 0,
        "message.timeout.ms": 30000,
    })


def listen(connection, channel):
    """LISTENs on the outbox's wake-up channel (what capture and emit() pg_notify)."""
    with connection.cursor() as cursor:
        if channel is None:
            cursor.execute("SELECT notify_channel FROM platform.settings")
            channel = cursor.fetchone()[0]
        cursor.execute('LISTEN "%s"' % channel.replace('"', '""'))
    if not connection.autocommit:
        connection.commit()


def wait_for_notification(connection, timeout):
    """Blocks until a notification arrives on the LISTEN connection or `timeout` seconds pass,
    then discards what arrived: the relays drain the outbox on every wake-up anyway."""
    if select.select([connection], [], [], timeout) != ([], [], []):
        connection.poll()
        connection.notifies.clear()
