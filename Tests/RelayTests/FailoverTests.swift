import Foundation
import Postgres
import TestSupport
import Testing

/// PostgreSQL failover: the relay, given both servers in a multi-host URL with
/// `target_session_attrs=read-write`, follows the primary role to the promoted standby by
/// itself.
@Suite("The relay follows a PostgreSQL failover")
struct FailoverTests {
    @Test("primary stopped with -m immediate, standby promoted: the relay resumes on the new primary, delivers every event the standby had, and marks each once")
    func failover() async throws {
        let primary = try await PrivatePostgresCluster.start()
        var primaryStopped = false
        defer { if !primaryStopped { Task { await primary.stop() } } }
        let environment = try await OutboxTestEnvironment.start("failover", clusterURL: primary.url)
        let primarySQL = try await environment.database.connect()
        let login = try await RelayLogin.create(primarySQL)
        let standby = try await primary.startStandby()
        var standbyStopped = false
        defer { if !standbyStopped { Task { await standby.stop() } } }

        let name = environment.database.name
        let bothServers = "postgresql://\(login.name)@127.0.0.1:\(primary.port),127.0.0.1:\(standby.port)/\(name)"
            + "?target_session_attrs=read-write"
        let relay = try RelayProcess.launch(
            relayArguments(environment, [], databaseURL: bothServers),
            environment: StallTests.faultSettings, label: "failover")
        defer { relay.stop() }

        try await emit(primarySQL, tenants: 3, eventsPerTenant: 5, firstRound: 0)
        try await environment.waitUntilAllDelivered(primarySQL)
        try await emit(primarySQL, tenants: 3, eventsPerTenant: 5, firstRound: 1)
        let standbyURL = "postgresql://postgres@127.0.0.1:\(standby.port)/\(name)"
        let standbySQL = try await PostgresConnection.connect(standbyURL)
        try await waitUntil("the standby has every event", timeout: .seconds(60)) {
            try await standbySQL.query("SELECT count(*) AS n FROM platform.schema_changes")[0].require(Int.self, column: "n") == 30
        }

        await primary.stop()
        primaryStopped = true
        try await standby.promote()
        let promotedSQL = try await PostgresConnection.connect(standbyURL)
        try await environment.waitUntilAllDelivered(promotedSQL, timeout: .seconds(120))
        try await emit(promotedSQL, tenants: 3, eventsPerTenant: 5, firstRound: 2)
        try await environment.waitUntilAllDelivered(promotedSQL, timeout: .seconds(120))
        #expect(relay.isRunning)
        // Each row records one position holding its own event; a record the old primary's
        // mark never reached the standby for is published again, as a duplicate.
        _ = try await verifyDelivery(environment, promotedSQL, tenants: 3, eventsPerTenant: 15, context: "failover")
        relay.stop()
        await standby.stop()
        standbyStopped = true
    }
}
