import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

@Suite("/metrics and /health of a running bridge, read over HTTP by curl")
struct ObservabilityTests {
    private func get(_ port: Int, _ path: String) async throws -> (status: Int, body: String) {
        let result = try await runTool(
            "/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    /// The value of the first sample of `metric` whose line contains every one of `labels`.
    private func sample(_ metrics: String, _ metric: String, _ labels: [String] = []) -> Double? {
        metrics.split(separator: "\n").first { line in
            line.hasPrefix(metric) && !line.hasPrefix("#") && labels.allSatisfy { line.contains($0) }
                && (line.dropFirst(metric.count).first == " " || line.dropFirst(metric.count).first == "{")
        }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// The port a bridge process serves `/metrics` on, from its start-up log line.
    private func listeningPort(of process: RelayProcess) async throws -> Int {
        try await process.waitForStandardError(containing: "observability endpoint listening")
        let line = try #require(process.standardErrorLines.first { $0.contains("observability endpoint listening") })
        return try #require(line.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) })
    }

    @Test("after traffic /metrics has the relay's metrics with sane values; ready fails while the broker is down")
    func metricsAndHealth() async throws {
        let environment = try await OutboxTestEnvironment.start("observability")
        let sql = try await environment.database.connect()
        let relay = try RelayProcess.launch(
            ["run", "--database-url", environment.relayURL, "--brokers", environment.broker.bootstrapServers,
             "--poll-interval", "0.2"],
            environment: ["RELAY_LEASE_SECONDS": "2"], label: "observability")
        defer { relay.stop() }
        let port = try await listeningPort(of: relay)

        try await waitUntil("the relay is listening for notifications") {
            try await sql.query(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )[0].require(Int.self, column: "n") == 1
        }
        try await sql.execute(script: """
            CREATE SCHEMA tenant_acme;
            CREATE TABLE tenant_acme.sensors (id int PRIMARY KEY);
            SELECT platform.emit('globex', 'test.event', '{}') FROM generate_series(1, 20);
            """)
        try await environment.waitUntilAllDelivered(sql)

        #expect(try await get(port, "/health/live").status == 200)
        try await waitUntil("ready") { try await get(port, "/health/ready").status == 200 }
        var metrics = ""
        try await waitUntil("the backlog gauges have sampled the drained outbox") {
            metrics = try await get(port, "/metrics").body
            return sample(metrics, "outbox_pending_events_total") == 0
        }
        #expect(sample(metrics, "outbox_events_published_total", ["topic=\"schema-changes\"", "outcome=\"delivered\""]) == 22)
        #expect(sample(metrics, "outbox_publish_to_ack_seconds_count") == 22)
        #expect(sample(metrics, "outbox_commit_to_ack_seconds_count") == 22)
        #expect((sample(metrics, "outbox_publish_to_ack_seconds_sum") ?? -1) > 0)
        #expect((sample(metrics, "outbox_wakeups_total", ["source=\"notify\""]) ?? 0) >= 1)
        #expect(sample(metrics, "outbox_wakeups_total", ["source=\"poll\""]) != nil)
        #expect(sample(metrics, "outbox_oldest_pending_age_seconds") == 0)
        #expect(sample(metrics, "outbox_dead_events") == 0)
        #expect((sample(metrics, "postgres_notification_queue_usage") ?? 1) < 0.01)
        #expect(sample(metrics, "outbox_retries_total") == nil || sample(metrics, "outbox_retries_total") == 0)

        try environment.broker.setBrokerDown(1)
        try await waitUntil("ready fails while the broker is down") {
            let ready = try await get(port, "/health/ready")
            return ready.status == 503 && ready.body.contains("Kafka unreachable")
        }
        #expect(try await get(port, "/health/live").status == 200)
        try environment.broker.setBrokerUp(1)
        try await waitUntil("ready again once the broker is back") { try await get(port, "/health/ready").status == 200 }

        // A relay stuck waiting on PostgreSQL makes no progress: ready fails until it moves on.
        let blocker = try await environment.database.connect()
        try await blocker.query("BEGIN")
        try await blocker.query("LOCK TABLE platform.schema_changes, platform.relay_leases IN ACCESS EXCLUSIVE MODE")
        try await waitUntil("ready fails while the relay is stuck", timeout: .seconds(30)) {
            let ready = try await get(port, "/health/ready")
            return ready.status == 503 && ready.body.contains("no progress")
        }
        try await blocker.query("COMMIT")
        try await waitUntil("ready again once the relay moves") { try await get(port, "/health/ready").status == 200 }
        await environment.drop()
    }

    @Test("a consumer given a port publishes its lag per group and partition")
    func consumerLag() async throws {
        let environment = try await OutboxTestEnvironment.start("consumer_lag")
        let sql = try await environment.database.connect()
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.query("SELECT platform.emit('acme', 'test.event', '{}') FROM generate_series(1, 5)")
            try await environment.waitUntilAllDelivered(sql)
        }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("lag-\(UUID().uuidString)")
        let consumer = try RelayProcess.launch(
            ["sdk-sync", "--brokers", environment.broker.bootstrapServers, "--out", output.path, "--http-port", "0"],
            label: "consumer-lag")
        defer { consumer.stop() }
        let port = try await listeningPort(of: consumer)
        let partition = try #require(try await environment.outboxRows(sql).first?.partition)

        try await waitUntil("the consumer has caught up and says so", timeout: .seconds(60)) {
            let metrics = try await get(port, "/metrics").body
            return sample(metrics, "outbox_consumer_lag", ["group=\"sdk-sync\"", "partition=\"\(partition)\""]) == 0
        }
        #expect(try await get(port, "/health/live").status == 200)
        await environment.drop()
    }

    /// Every series of `metric` in a scrape, one line each.
    private func series(_ metrics: String, _ metric: String) -> [Substring] {
        metrics.split(separator: "\n").filter { $0.hasPrefix(metric + "{") }
    }

    @Test("with a {tenant} topic and more tenants than the gauge reports, /metrics keeps a bounded set of series")
    func metricLabelsStayBounded() async throws {
        let environment = try await OutboxTestEnvironment.start("bounded_metrics")
        let sql = try await environment.database.connect()
        let tenants = 60
        let reportedTenants = 50  // BacklogGauges' default tenantLimit
        for tenant in 1...tenants {
            try environment.broker.createTopic("events.a\(tenant)", partitions: 1)
        }
        let relay = try RelayProcess.launch(
            ["run", "--database-url", environment.relayURL,
             "--brokers", environment.broker.bootstrapServers, "--poll-interval", "0.2"],
            environment: ["RELAY_LEASE_SECONDS": "2", "RELAY_TOPIC": "events.{tenant}"], label: "bounded-metrics")
        defer { relay.stop() }
        let port = try await listeningPort(of: relay)

        /// One pending event for each of `tenants` tenants `<prefix>1…`, held back from the relay
        /// for an hour, so the backlog gauges see them all at once.
        func holdBacklog(_ prefix: String, releasing released: String?) async throws {
            try await sql.execute(script: """
                BEGIN;
                \(released.map { "UPDATE platform.schema_changes SET next_attempt_at = NULL WHERE tenant_key LIKE '\($0)%';" } ?? "")
                SELECT platform.emit('\(prefix)' || n, 'test.event', '{}') FROM generate_series(1, \(tenants)) AS n;
                UPDATE platform.schema_changes SET next_attempt_at = now() + interval '1 hour'
                WHERE tenant_key LIKE '\(prefix)%';
                COMMIT;
                """)
        }
        /// A scrape for a `waitUntil` poll. The gauges change every 5 s, so each scrape first
        /// waits a quarter of a second: polling at `waitUntil`'s pace would start thousands of
        /// curl processes a minute.
        func pacedScrape() async throws -> String {
            try await Task.sleep(for: .milliseconds(250))
            return try await get(port, "/metrics").body
        }
        func pendingSeries() async throws -> [Substring] {
            series(try await pacedScrape(), "outbox_pending_events")
        }

        try await holdBacklog("a", releasing: nil)
        var reported: [Substring] = []
        try await waitUntil("the gauges report the first wave's backlog", timeout: .seconds(60)) {
            reported = try await pendingSeries()
            return !reported.isEmpty
        }
        #expect(reported.count == reportedTenants, "\(reported)")

        // The first wave is delivered while a second wave of other tenants waits: the gauges
        // of the first wave go away instead of reading 0 forever.
        try await holdBacklog("b", releasing: "a")
        try await waitUntil("every first-wave event is delivered", timeout: .seconds(60)) {
            try await sql.query(
                "SELECT count(*) AS n FROM platform.schema_changes WHERE processed"
            )[0].require(Int.self, column: "n") == tenants
        }
        // Sixty topics, one counter series: labelled by the template.
        var published: [Substring] = []
        try await waitUntil("the first wave's deliveries are counted", timeout: .seconds(60)) {
            published = series(try await pacedScrape(), "outbox_events_published_total")
            return published.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +) == Double(tenants)
        }
        #expect(published.count == 1, "\(published)")
        #expect(published.first?.contains(#"topic="events.{tenant}""#) == true, "\(published)")
        try await waitUntil("the gauges report only the second wave", timeout: .seconds(60)) {
            reported = try await pendingSeries()
            return !reported.isEmpty && reported.allSatisfy { $0.contains("tenant=\"b") }
        }
        #expect(reported.count == reportedTenants, "\(reported)")

        relay.stop()
        await environment.drop()
    }
}
