import Foundation
import Kafka
import Outbox
import Postgres
import TestSupport
import Testing

/// The status page and `/api/status` of a running relay (run as a login holding only
/// outbox_relay), read by headless Chromium and curl, and the `status` command beside them.
@Suite("Status page, /api/status and `status` against a running relay")
struct StatusPageTests {
    private struct Response {
        var status: Int
        var body: String
        /// curl's own complaint when it got no response.
        var problem: String
    }

    private func get(_ url: String, token: String? = nil, host: String? = nil) async throws -> Response {
        let header = (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? []) + (host.map { ["-H", "Host: \($0)"] } ?? [])
        let result = try await runTool("/usr/bin/curl", ["-sS", "-m", "10", "-w", "\n%{http_code}"] + header + [url])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return Response(
            status: Int(lines.last ?? "") ?? 0, body: lines.dropLast().joined(separator: "\n"), problem: result.errorOutput)
    }

    private func runBridge(_ arguments: [String]) async throws -> ToolResult {
        try await runTool(try RelayProcess.executableURL().path, arguments)
    }

    /// The port a bridge process serves HTTP on, from its start-up log line.
    private func listeningPort(of process: RelayProcess) async throws -> Int {
        try await process.waitForStandardError(containing: "observability endpoint listening", timeout: .seconds(120))
        let line = try #require(process.standardErrorLines.first { $0.contains("observability endpoint listening") })
        return try #require(line.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) })
    }

    private func launchRelay(
        _ environment: OutboxTestEnvironment, label: String, extra: [String] = [], settings: [String: String] = [:]
    ) throws -> RelayProcess {
        try RelayProcess.launch(
            ["run", "--database-url", environment.relayURL, "--brokers", environment.broker.bootstrapServers,
             "--poll-interval", "0.2", "--http-port", "0"] + extra,
            environment: settings, label: label)
    }

    private func decodeStatus(_ json: String) throws -> OutboxStatus {
        try OperatorJSON.decodeStatus(Data(json.utf8))
    }

    @Test("headless Chromium loads the page, which shows a DDL change soon after it is made, and its screenshot is not blank")
    func browserSeesDDLChange() async throws {
        let browser = try HeadlessBrowser()
        let environment = try await OutboxTestEnvironment.start("status_page")
        let sql = try await environment.database.connect()
        let relay = try launchRelay(environment, label: "status-page")
        defer { relay.stop() }
        let page = "http://127.0.0.1:\(try await listeningPort(of: relay))/"

        try await waitUntil("the page says the relay is ready", timeout: .seconds(300)) {
            try await browser.dumpDOM(page).contains(#"<span id="readiness" class="ready">ready</span>"#)
        }
        try await sql.execute(script: """
            CREATE SCHEMA tenant_pagetest;
            CREATE TABLE tenant_pagetest.gauges (id int PRIMARY KEY);
            ALTER TABLE tenant_pagetest.gauges ADD COLUMN reading_celsius numeric;
            """)
        var dom = ""
        try await waitUntil("the page lists the ALTER TABLE among the last deliveries", timeout: .seconds(300)) {
            dom = try await browser.dumpDOM(page)
            return dom.contains("<td>ALTER TABLE</td>") && dom.contains("<td>pagetest</td>")
        }
        #expect(dom.contains("<td>schema-changes</td>"), "the delivery's topic is shown")

        // A dead letter, as the relay leaves one, so the page shows its reason.
        try await sql.query("SELECT platform.emit('globex', 'billing.invoice_issued', '{}')")
        try await environment.waitUntilAllDelivered(sql)
        try await sql.query("""
            UPDATE platform.schema_changes SET processed = false, dead = true, attempts = 5,
                   dead_reason = 'Broker: Message size too large'
            WHERE tenant_key = 'globex'
            """)
        try await waitUntil("the page lists the dead letter with its reason", timeout: .seconds(300)) {
            try await browser.dumpDOM(page).contains("<td>Broker: Message size too large</td>")
        }

        let screenshot = try await browser.screenshot(page)
        #expect(try await HeadlessBrowser.distinctColours(inPNG: screenshot) > 10, "the screenshot is blank")
        let phone = try await browser.screenshot(page, width: 390, height: 844)
        #expect(try await HeadlessBrowser.distinctColours(inPNG: phone) > 10, "the phone-sized screenshot is blank")
        if let keep = ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_STATUS_SCREENSHOT"] {
            try screenshot.write(to: URL(fileURLWithPath: keep))
        }
        await environment.drop()
    }

    @Test("/api/status and `status --json` on the same database say the same")
    func apiAgreesWithStatusCommand() async throws {
        let environment = try await OutboxTestEnvironment.start("status_api")
        let sql = try await environment.database.connect()
        let relay = try launchRelay(environment, label: "status-api")
        defer { relay.stop() }
        let api = "http://127.0.0.1:\(try await listeningPort(of: relay))/api/status"
        try await sql.execute(script: """
            CREATE SCHEMA tenant_apitest;
            CREATE TABLE tenant_apitest.meters (id int PRIMARY KEY);
            SELECT platform.emit('t' || n % 3, 'test.event', '{}') FROM generate_series(1, 9) AS n;
            """)
        try await environment.waitUntilAllDelivered(sql)

        var fromAPI: OutboxStatus?
        var fromCommand: OutboxStatus?
        // The page's reading is kept for a second; the two agree once it is from after the last change.
        try await waitUntil("the API and the command agree", timeout: .seconds(120)) {
            let response = try await get(api)
            guard response.status == 200 else { return false }
            let command = try await runBridge(["status", "--database-url", environment.database.url, "--json"])
            #expect(command.status == 0, "\(command.errorOutput)")
            let (a, c) = (try decodeStatus(response.body), try decodeStatus(command.output))
            (fromAPI, fromCommand) = (a, c)
            return a.processed == c.processed && a.recentDeliveries == c.recentDeliveries
                && a.instances.map(\.shards) == c.instances.map(\.shards)
        }
        let a = try #require(fromAPI)
        let c = try #require(fromCommand)
        #expect((a.pending, a.dead, a.processed) == (c.pending, c.dead, c.processed))
        #expect(a.processed == 11)
        #expect(a.tenants == c.tenants)
        #expect(a.backlog == c.backlog)
        #expect(a.retrying == c.retrying)
        #expect(a.deadLetters == c.deadLetters)
        #expect(a.recentDeliveries == c.recentDeliveries)
        #expect(a.recentDeliveries.count == 10)
        #expect(a.instances.map(\.id) == c.instances.map(\.id))
        #expect(a.instances.count == 1)
        #expect((a.deliveryRate.map(\.eventsPerSecond).reduce(0, +) * 10).rounded() == 11, "the rate counts every delivery")
        #expect(a.readiness != nil, "the running relay says whether it is ready")
        #expect(c.readiness == nil, "the command is not the relay and cannot know")
        #expect(a.inFlight == 0, "everything was acknowledged and marked")
        #expect(c.inFlight == nil)
        await environment.drop()
    }

    @Test("the page and /api/status: 401 off loopback without the token or with a wrong one, 200 with it, open on loopback; /health and /metrics unchanged")
    func tokenGuardsThePage() async throws {
        let environment = try await OutboxTestEnvironment.start("status_token")
        let sql = try await environment.database.connect()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("status-token-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let tokenFile = directory.appendingPathComponent("token")
        try Data("s3cret-status-token\n".utf8).write(to: tokenFile)
        let config = directory.appendingPathComponent("bridge.yaml")
        try Data("http:\n  tokenFile: \(tokenFile.path)\n".utf8).write(to: config)

        // Listening on every interface, as by default, so that a client off loopback reaches it.
        let relay = try launchRelay(
            environment, label: "status-token", extra: ["--config", config.path], settings: ["HTTP_HOST": "0.0.0.0"])
        defer { relay.stop() }
        let port = try await listeningPort(of: relay)
        try await sql.execute(script: "CREATE SCHEMA tenant_secretive; CREATE TABLE tenant_secretive.plans (id int);")
        try await environment.waitUntilAllDelivered(sql)

        let remote = "http://\(try nonLoopbackIPv4Address()):\(port)"
        for path in ["/", "/api/status"] {
            for token in [nil, "wrong-token", "s3cret-status-tokenX", "s3cret-status-toke"] {
                let response = try await get(remote + path, token: token)
                #expect(response.status == 401, "\(path) with token \(token ?? "none"): \(response.problem)")
                #expect(response.body == "unauthorized\n", "the 401 body says nothing else")
            }
            #expect(try await get(remote + path, token: "s3cret-status-token").status == 200, "\(path) with the token")
            #expect(try await get("http://127.0.0.1:\(port)\(path)").status == 200, "\(path) on loopback without a token")
            #expect(try await get("http://localhost:\(port)\(path)").status == 200, "\(path) at localhost without a token")
            #expect(
                try await get("http://127.0.0.1:\(port)\(path)", host: "rebound.example:\(port)").status == 401,
                "\(path) on loopback for a page whose name was rebound to 127.0.0.1 (DNS rebinding)")
        }
        let authorized = try await get(remote + "/api/status", token: "s3cret-status-token")
        #expect(try decodeStatus(authorized.body).tenants.map(\.tenant) == ["secretive"])
        #expect(try await get(remote + "/", token: "s3cret-status-token").body.contains("<title>OutboxBridge status</title>"))
        #expect(try await get(remote + "/health/live").status == 200)
        #expect(try await get(remote + "/metrics").body.contains("outbox_events_published_total"))

        // A token file that cannot be read is bad settings: exit 2, one line naming the key.
        try Data("http:\n  tokenFile: \(directory.path)/missing\n".utf8).write(to: config)
        let refused = try await runBridge(
            ["run", "--config", config.path, "--database-url", environment.relayURL,
             "--brokers", environment.broker.bootstrapServers, "--http-port", "0"])
        #expect(refused.status == 2)
        #expect(refused.errorOutput.contains("http.tokenFile"))
        #expect(refused.errorOutput.split(separator: "\n").count == 1, "\(refused.errorOutput)")
        await environment.drop()
    }

    @Test("`status` lists retrying and dead events with their errors; --fail-if exits 1 when a condition holds and 2 when it is malformed")
    func statusFailIf() async throws {
        let environment = try await OutboxTestEnvironment.start("status_fail_if")
        let sql = try await environment.database.connect()
        try await sql.execute(script: """
            SELECT platform.emit('acme', 'test.retrying', '{}');
            SELECT platform.emit('globex', 'test.dead', '{}');
            UPDATE platform.schema_changes SET attempts = 3, last_error = 'Broker: Request timed out',
                   next_attempt_at = now() + interval '1 minute' WHERE tenant_key = 'acme';
            UPDATE platform.schema_changes SET dead = true, attempts = 5, dead_reason = 'Broker: Message size too large'
            WHERE tenant_key = 'globex';
            """)
        let location = ["status", "--database-url", environment.database.url]

        let text = try await runBridge(location)
        #expect(text.status == 0, "\(text.errorOutput)")
        #expect(text.output.contains("3 attempts"))
        #expect(text.output.contains("Broker: Request timed out"))
        #expect(text.output.contains("Broker: Message size too large"))
        #expect(text.output.contains("acme: 1 pending"))
        #expect(text.output.contains("relay instances: 0"))

        let dead = try await runBridge(location + ["--fail-if", "dead>0"])
        #expect(dead.status == 1)
        #expect(dead.errorOutput.contains("condition met: dead>0 (dead is 1)"))
        let noInstance = try await runBridge(location + ["--fail-if", "instances<1", "--json"])
        #expect(noInstance.status == 1)
        #expect(try decodeStatus(noInstance.output).retrying.map(\.attempts) == [3], "--json still prints the status")
        let fine = try await runBridge(location + ["--fail-if", "pending>5", "--fail-if", "oldest-pending>1h", "--fail-if", "dead>=2"])
        #expect(fine.status == 0, "\(fine.errorOutput)")
        let old = try await runBridge(location + ["--fail-if", "oldest-pending >= 0s"])
        #expect(old.status == 1)

        for (condition, problem) in [("lag>3", "unknown measure"), ("oldest-pending>5", "duration with a unit"),
                                     ("dead>lots", "whole number"), ("dead", "expected <measure><operator><value>")] {
            let bad = try await runBridge(location + ["--fail-if", condition])
            #expect(bad.status == 2, "\(condition)")
            #expect(bad.errorOutput.contains(problem), "\(condition): \(bad.errorOutput)")
            #expect(bad.errorOutput.split(separator: "\n").count == 1, "\(condition): \(bad.errorOutput)")
        }
        await environment.drop()
    }

    @Test("a consumer's page shows its lag per partition, the last event applied per tenant and its dead letters, on loopback or with the token (401 otherwise)")
    func consumerPage() async throws {
        let browser = try HeadlessBrowser()
        let environment = try await OutboxTestEnvironment.start("consumer_page")
        let sql = try await environment.database.connect()
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.execute(script: """
                CREATE SCHEMA tenant_consumerpage;
                CREATE TABLE tenant_consumerpage.orders (id int PRIMARY KEY);
                """)
            try await environment.waitUntilAllDelivered(sql)
        }
        _ = try await environment.kafka.produceWithKafkaPython(
            topic: OutboxTestEnvironment.topic, key: "consumerpage", value: "not an event",
            header: (name: "event_id", value: "garbled"))
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("consumer-page-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        let consumer = try RelayProcess.launch(
            ["sdk-sync", "--brokers", environment.broker.bootstrapServers, "--out", output.path, "--http-port", "0"],
            environment: ["HTTP_TOKEN": "consumer-status-token"], label: "consumer-page")
        defer { consumer.stop() }
        let port = try await listeningPort(of: consumer)
        let page = "http://127.0.0.1:\(port)/"

        var dom = ""
        try await waitUntil("the page shows the applied CREATE TABLE and the dead letter", timeout: .seconds(300)) {
            dom = try await browser.dumpDOM(page)
            return dom.contains("<td>CREATE TABLE</td>") && dom.contains("undecodable event")
        }
        #expect(dom.contains("<td>consumerpage</td>"), "the tenant of the last applied event")
        #expect(dom.contains("<b>sdk-sync</b>"), "the consumer group")
        #expect(dom.contains("<th>lag</th>"), "the lag table")
        let status = try JSONSerialization.jsonObject(with: Data(try await get(page + "api/status").body.utf8)) as? [String: Any]
        #expect(status?["group"] as? String == "sdk-sync")
        #expect((status?["partitions"] as? [[String: Any]])?.isEmpty == false)
        let remote = "http://\(try nonLoopbackIPv4Address()):\(port)"
        for path in ["/", "/api/status"] {
            for token in [nil, "wrong-token", "consumer-status-tokenX"] {
                let response = try await get(remote + path, token: token)
                #expect(response.status == 401, "\(path) with token \(token ?? "none"): \(response.problem)")
                #expect(response.body == "unauthorized\n", "the 401 body says nothing else")
            }
            #expect(try await get(remote + path, token: "consumer-status-token").status == 200, "\(path) with the token")
        }
        #expect(try await get(remote + "/health/live").status == 200, "/health needs no token")
        await environment.drop()
    }
}
