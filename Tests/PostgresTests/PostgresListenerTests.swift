import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("LISTEN/NOTIFY through the socket-driven listener")
struct PostgresListenerTests {
    @Test("10,000 notifications sent in 100 transactions all arrive, in order, also when reads are spaced",
          arguments: [Duration.zero, .milliseconds(5)])
    func notificationsArriveInOrder(readInterval: Duration) async throws {
        let clusterURL = try TestDatabase.clusterURL()
        let channel = "order_check_\(UInt32.random(in: 0...UInt32.max))"
        var options = PostgresListener.Options()
        options.readInterval = readInterval
        let listener = try await PostgresListener.connect(clusterURL, channels: [channel], options: options)
        defer { listener.close() }
        let sender = try await PostgresConnection.connect(clusterURL)

        async let received: [String] = {
            var payloads: [String] = []
            for try await notification in listener.notifications {
                #expect(notification.channel == channel)
                payloads.append(notification.payload)
                if payloads.count == 10_000 { break }
            }
            return payloads
        }()
        for batch in 0..<100 {
            try await sender.query(
                "SELECT pg_notify($1, (($2::int * 100) + n)::text) FROM generate_series(0, 99) AS n",
                [channel, batch])
        }
        #expect(try await received == (0..<10_000).map(String.init))
    }

    @Test("a terminated listening backend ends the sequence with connectionLost")
    func terminatedBackendIsReported() async throws {
        let clusterURL = try TestDatabase.clusterURL()
        let listener = try await PostgresListener.connect(clusterURL, channels: ["terminate_check"])
        defer { listener.close() }
        let admin = try await PostgresConnection.connect(clusterURL)
        try await admin.query("SELECT pg_terminate_backend($1)", [listener.backendPID])

        let error = await #expect(throws: PostgresError.self) {
            for try await _ in listener.notifications {}
        }
        #expect(error?.kind == .connectionLost)
    }

    @Test("a half-open connection is caught by the heartbeat")
    func heartbeatDetectsSilentConnection() async throws {
        let clusterURL = try TestDatabase.clusterURL()
        var options = PostgresListener.Options()
        options.heartbeatInterval = .milliseconds(200)
        options.heartbeatTimeout = .milliseconds(300)
        let listener = try await PostgresListener.connect(clusterURL, channels: ["heartbeat_check"], options: options)
        defer { listener.close() }
        // SIGSTOP freezes the backend without closing its socket: the connection is open but
        // nobody answers, as after a network partition.
        let backend = listener.backendPID
        #expect(kill(backend, SIGSTOP) == 0)
        defer { kill(backend, SIGCONT) }

        let error = await #expect(throws: PostgresError.self) {
            for try await _ in listener.notifications {}
        }
        #expect(error?.kind == .connectionLost)
        #expect(error?.message.contains("heartbeat") == true)
    }

    @Test("close() ends iteration normally")
    func closeEndsIteration() async throws {
        let listener = try await PostgresListener.connect(try TestDatabase.clusterURL(), channels: ["close_check"])
        async let count: Int = {
            var count = 0
            for try await _ in listener.notifications { count += 1 }
            return count
        }()
        listener.close()
        #expect(try await count == 0)
    }

    @Test("cancelling the iterating task ends iteration, at whatever moment of a burst of notifications it lands")
    func cancellationEndsIterationMidBurst() async throws {
        let clusterURL = try TestDatabase.clusterURL()
        let channel = "cancel_check_\(UInt32.random(in: 0...UInt32.max))"
        let listener = try await PostgresListener.connect(clusterURL, channels: [channel])
        defer { listener.close() }
        let sender = try await PostgresConnection.connect(clusterURL)

        for round in 1...200 {
            // A burst per round, and the cancel sent from another task once a random number of
            // them arrived: it lands while the consumer is busy taking the rest, or waiting.
            try await sender.query("SELECT pg_notify($1, n::text) FROM generate_series(1, 300) AS n", [channel])
            let cancelAt = Int.random(in: 1...300)
            let (reached, reachedContinuation) = AsyncStream<Void>.makeStream()
            let ended = Atomic<Bool>(false)
            let iteration = Task {
                defer {
                    ended.store(true, ordering: .sequentiallyConsistent)
                    reachedContinuation.finish()
                }
                var received = 0
                for try await _ in listener.notifications {
                    received += 1
                    if received == cancelAt { reachedContinuation.yield() }
                }
            }
            for await _ in reached { break }
            iteration.cancel()
            try await waitUntil("round \(round): the iteration cancelled after \(cancelAt) notifications ended", timeout: .seconds(60)) {
                ended.load(ordering: .sequentiallyConsistent)
            }
            // Ended by the cancel, not by a lost connection before it.
            await #expect(throws: CancellationError.self) { try await iteration.value }
        }
    }
}
