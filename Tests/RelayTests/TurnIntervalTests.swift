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

        static func read(_ relay: RelayProcess, port: Int) async throws -> RoundTrips {
            var total = RoundTrips()
            for statement in ["claim", "write"] {
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
                relayArguments(environment, []), environment: ["RELAY_TURN_INTERVAL_SECONDS": interval],
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
}
