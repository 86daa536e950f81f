import Foundation
import Postgres
import TestSupport
import Testing

/// `relay.turnIntervalSeconds` spaces the relay's claims, and its outcome writes, while events
/// keep arriving, so that one round trip carries what arrived since the last one instead of
/// costing a round trip per event. The relay's own counters of round trips and of the rows they
/// carried show it; no timing is measured.
@Suite("Under a steady stream, round trips carry many events")
struct TurnIntervalTests {
    static let events = 200

    private struct RoundTrips {
        var trips = 0.0
        var rows = 0.0

        static func read(_ relay: RelayProcess, port: Int, statements: [String] = ["claim", "write"]) async throws -> RoundTrips {
            var total = RoundTrips()
            for statement in statements {
                total.trips += try await relay.metric("outbox_relay_round_trips_total{statement=\"\(statement)\"}", port: port) ?? 0
                total.rows += try await relay.metric("outbox_relay_round_trip_rows_total{statement=\"\(statement)\"}", port: port) ?? 0
            }
            return total
        }
    }

    @Test("events committed one at a time, each with its own notification, are claimed and written several to a round trip",
          arguments: [(interval: "1", atLeast: 4.0), (interval: "0", atLeast: 0.0)])
    func steadyStreamFormsBatches(interval: String, atLeast: Double) async throws {
        try await withEnvironment("turn_interval_\(interval)") { environment, sql in
            let relay = try RelayProcess.launch(
                relayArguments(environment, []),
                // The turn interval alone: outcome writes gather no more than claims do.
                environment: ["RELAY_TURN_INTERVAL_SECONDS": interval, "RELAY_WRITE_INTERVAL_SECONDS": "0"],
                label: "turn-interval-\(interval)")
            defer { relay.stop() }
            let port = try await relay.observabilityPort()
            try await emit(sql, tenants: 1, eventsPerTenant: 1, firstRound: 0)
            try await environment.waitUntilAllDelivered(sql)
            try await waitUntil("the relay counts the first event's claim and write") {
                try await RoundTrips.read(relay, port: port).rows >= 2
            }
            let before = try await RoundTrips.read(relay, port: port)

            // A steady stream: one event per transaction, every 10 ms or so (the pause paces
            // the writer; nothing waits on it).
            for round in 1...Self.events {
                try await emit(sql, tenants: 1, eventsPerTenant: 1, firstRound: round)
                try await Task.sleep(for: .milliseconds(10))
            }
            try await environment.waitUntilAllDelivered(sql, timeout: .seconds(120))
            // Each event is one row claimed and one outcome written.
            try await waitUntil("every outcome is counted", timeout: .seconds(60)) {
                try await RoundTrips.read(relay, port: port).rows >= before.rows + Double(2 * Self.events)
            }
            let after = try await RoundTrips.read(relay, port: port)
            let (trips, rows) = (after.trips - before.trips, after.rows - before.rows)
            print("turn interval \(interval) s: \(Int(rows)) rows in \(Int(trips)) round trips")
            #expect(rows / trips >= atLeast, "\(Int(rows)) rows claimed or written in \(Int(trips)) round trips")
            if interval == "0" {
                // Unspaced, the same stream costs a round trip for nearly every event: what the
                // spaced case is measured against.
                #expect(rows / trips < 2, "\(Int(rows)) rows claimed or written in \(Int(trips)) round trips")
            }
            _ = try await verifyDelivery(environment, sql, tenants: 1, eventsPerTenant: Self.events + 1, context: "turn interval")
        }
    }

    @Test("with room to claim, outcome writes carry the acks of many events; while a backlog drains they follow the turn interval alone")
    func writesGatherAcksButNeverHoldBackADrain() async throws {
        try await withEnvironment("write_interval") { environment, sql in
            // Claims unspaced, writes at most once a second while there is room for a batch.
            let spacedWrites = ["RELAY_TURN_INTERVAL_SECONDS": "0", "RELAY_WRITE_INTERVAL_SECONDS": "1"]
            let steady = try RelayProcess.launch(relayArguments(environment, []), environment: spacedWrites, label: "write-interval")
            defer { steady.stop() }
            let port = try await steady.observabilityPort()
            try await emit(sql, tenants: 1, eventsPerTenant: 1, firstRound: 0)
            try await environment.waitUntilAllDelivered(sql)
            let before = try await RoundTrips.read(steady, port: port, statements: ["write"])
            // A steady stream, one event every 10 ms or so (the pause paces the writer).
            for round in 1...100 {
                try await emit(sql, tenants: 1, eventsPerTenant: 1, firstRound: round)
                try await Task.sleep(for: .milliseconds(10))
            }
            try await environment.waitUntilAllDelivered(sql, timeout: .seconds(60))
            let after = try await RoundTrips.read(steady, port: port, statements: ["write"])
            let (writes, rows) = (after.trips - before.trips, after.rows - before.rows)
            #expect(rows == 100, "every event's outcome written once")
            #expect(rows / writes >= 4, "\(Int(rows)) outcomes in \(Int(writes)) writes")
            steady.stop()

            // Batches of 10, at most 4 awaiting their write: room for a batch is always short
            // while 2,000 events drain, so writes must not wait the second. Held, the drain
            // would take at least a second per write.
            let draining = try RelayProcess.launch(
                relayArguments(environment, ["--batch-size", "10"]), environment: spacedWrites, label: "write-interval-drain")
            defer { draining.stop() }
            let drainPort = try await draining.observabilityPort()
            let drainStart = ContinuousClock.now
            try await emit(sql, tenants: 20, eventsPerTenant: 100, firstRound: 200)
            try await environment.waitUntilAllDelivered(sql, timeout: .seconds(120))
            let drained = ContinuousClock.now - drainStart
            let drainWrites = try await RoundTrips.read(draining, port: drainPort, statements: ["write"]).trips
            #expect(drainWrites >= 50, "2,000 outcomes with at most 40 awaiting their write took \(Int(drainWrites)) writes")
            #expect(drained < .seconds(drainWrites / 2), "\(Int(drainWrites)) writes in \(drained): writes waited for the interval")
            let outbox = try await environment.outboxRows(sql)
            #expect(outbox.count == 2_101 && outbox.allSatisfy { $0.processed && $0.offset != nil }, "every event written back with its position")
        }
    }
}
