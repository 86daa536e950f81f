import Consumers
import Foundation
import Kafka
import Logging
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `exec`: a command per event, committed after exit 0, retried then dead-lettered, killed with
/// its process group at the timeout, run again after a crash. The events are produced to the
/// mock broker here; end to end (DDL → relay → exec) they need nothing the capture does not
/// already emit, except `OUTBOX_TENANT_SEQ`, which stays empty until sql/016 is merged.
@Suite("exec consumer: one command per event, in any language")
struct ExecConsumerTests {
    @Test("A command that fails twice, then succeeds, applies the event once, with the event on stdin and its facts in the environment")
    func failsTwiceThenApplies() async throws {
        let scratch = try ScratchDirectory()
        let broker = try ExecTestBroker(group: "exec-flaky")
        let script = """
            count_file="$1/attempts-$OUTBOX_EVENT_ID"
            attempts=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
            echo "$attempts" > "$count_file"
            if [ "$attempts" -lt 3 ]; then echo "not yet ($attempts)" >&2; exit 1; fi
            cat > "$1/stdin-$OUTBOX_EVENT_ID.json"
            echo "$OUTBOX_EVENT_ID|$OUTBOX_TENANT|$OUTBOX_EVENT_TYPE|$OUTBOX_TENANT_SEQ|$OUTBOX_EVENT_KIND" >> "$1/applied.log"
            """
        let events = [
            SyntheticEvent(command: "CREATE TABLE", tenantSeq: 1, table: "orders"),
            SyntheticEvent(command: "ALTER TABLE", tenantSeq: 2, table: "orders"),
        ]
        try await produce(events, to: broker.topic, on: broker.broker)
        let runtime = try broker.runtime(command: ["/bin/sh", "-c", script, "sh", scratch.path], maxAttempts: 5)
        try await withRunningConsumer(runtime) {
            try await waitUntil("both events are applied", timeout: .seconds(120)) {
                scratch.lines("applied.log").count == 2
            }
        }
        #expect(scratch.lines("applied.log") == events.map { "\($0.eventID)|acme|\($0.command)|\($0.tenantSeq!)|ddl" })
        for event in events {
            #expect(scratch.text("attempts-\(event.eventID)") == "3\n")
            #expect(scratch.text("stdin-\(event.eventID).json") == event.json, "stdin holds the record's JSON unchanged")
        }
        #expect(try await broker.deadLetters().isEmpty)

        // Committed: the same group started again runs only what is new.
        let later = SyntheticEvent(command: "DROP TABLE", tenantSeq: 3, table: "orders")
        try await produce([later], to: broker.topic, on: broker.broker)
        let second = try broker.runtime(command: ["/bin/sh", "-c", script, "sh", scratch.path], maxAttempts: 5)
        try await withRunningConsumer(second) {
            try await waitUntil("the new event is applied", timeout: .seconds(120)) {
                scratch.lines("applied.log").count == 3
            }
        }
        #expect(scratch.lines("applied.log").last?.hasPrefix(later.eventID) == true)
    }

    @Test("A command that always fails is dead-lettered to <group>.dead-letter with its exit status and stderr tail")
    func alwaysFailingIsDeadLettered() async throws {
        let broker = try ExecTestBroker(group: "exec-failing")
        let event = SyntheticEvent(command: "ALTER TABLE", tenantSeq: 1)
        let next = SyntheticEvent(command: "COMMENT", tenantSeq: 2, table: "other")
        try await produce([event, next], to: broker.topic, on: broker.broker)
        let script = """
            echo "lots of noise before the point" >&2
            echo "boom: cannot document $OUTBOX_EVENT_ID" >&2
            exit 7
            """
        let runtime = try broker.runtime(command: ["/bin/sh", "-c", script], maxAttempts: 2)
        try await withRunningConsumer(runtime) {
            try await waitUntil("both events are dead-lettered", timeout: .seconds(120)) {
                try await broker.deadLetters().count == 2
            }
        }
        let deadLetter = try #require(try await broker.deadLetters().first)
        let reason = try #require(deadLetter.header("dead_letter_reason"))
        #expect(reason.contains("exit status 7"), "\(reason)")
        #expect(reason.contains("boom: cannot document \(event.eventID)"), "\(reason)")
        #expect(deadLetter.header("dead_letter_attempts") == "2")
        #expect(deadLetter.header("dead_letter_consumer") == "exec")
        #expect(deadLetter.payload == event.json)
        #expect(deadLetter.key == "acme")
    }

    @Test("A command that hangs is killed at its timeout, with every process of its group, and dead-lettered")
    func hangingCommandIsKilled() async throws {
        let scratch = try ScratchDirectory()
        let broker = try ExecTestBroker(group: "exec-hanging")
        try await produce([SyntheticEvent(tenantSeq: 1)], to: broker.topic, on: broker.broker)
        // The shell waits on a background child: killing only the shell would leave it behind.
        let script = #"sleep 600 & echo $! > "$1/sleeper.pid"; wait"#
        let runtime = try broker.runtime(
            command: ["/bin/sh", "-c", script, "sh", scratch.path], maxAttempts: 1, timeout: .seconds(2))
        try await withRunningConsumer(runtime) {
            try await waitUntil("the event is dead-lettered", timeout: .seconds(120)) {
                try await broker.deadLetters().count == 1
            }
        }
        let reason = try #require(try await broker.deadLetters().first?.header("dead_letter_reason"))
        #expect(reason.contains("still running after 2.0 seconds, process group killed"), "\(reason)")
        let sleeper = try #require(Int32(scratch.text("sleeper.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
        try await waitUntil("the background child of the command is gone", timeout: .seconds(30)) {
            !isAlive(sleeper)
        }
    }

    @Test("kill -9 of the consumer while its command runs: the event runs again; the committed one before it does not")
    func crashMidCommandRedelivers() async throws {
        let scratch = try ScratchDirectory()
        let broker = try ExecTestBroker(group: "exec-crash")
        let first = SyntheticEvent(tenantSeq: 1, table: "first")
        let stuck = SyntheticEvent(tenantSeq: 2, table: "stuck")
        try await produce([first, stuck], to: broker.topic, on: broker.broker)
        // The first run of `stuck` hangs (it records its process group so the test can clean
        // up the orphan); every later run finishes.
        let script = """
            echo "start $OUTBOX_EVENT_ID $$" >> "$1/runs.log"
            if [ "$OUTBOX_EVENT_ID" = "\(stuck.eventID)" ] && [ "$(grep -c "start $OUTBOX_EVENT_ID" "$1/runs.log")" -eq 1 ]; then
              sleep 600
            fi
            echo "done $OUTBOX_EVENT_ID" >> "$1/runs.log"
            """
        let arguments = [
            "exec", "--brokers", broker.broker.bootstrapServers, "--group", broker.group, "--timeout", "600",
        ] + MockConsumerGroup.consumerPropertyArguments + ["--", "/bin/sh", "-c", script, "sh", scratch.path]
        let crashing = try RelayProcess.launch(arguments, label: "exec-crash-1")
        try await waitUntil("the stuck event's command is running", timeout: .seconds(120)) {
            scratch.lines("runs.log").contains { $0.hasPrefix("start \(stuck.eventID)") }
        }
        crashing.kill(SIGKILL)
        #expect(try await crashing.waitForExit(timeout: .seconds(30)) == 128 + SIGKILL)
        let orphan = try #require(scratch.lines("runs.log").last?.split(separator: " ").last.flatMap { Int32($0) })
        kill(-orphan, SIGKILL)

        let successor = try RelayProcess.launch(arguments, label: "exec-crash-2")
        try await waitUntil("the successor ran the stuck event to the end", timeout: .seconds(180)) {
            scratch.lines("runs.log").contains("done \(stuck.eventID)")
        }
        successor.kill(SIGTERM)
        #expect(try await successor.waitForExit(timeout: .seconds(60)) == 0, "\(successor.standardError.suffix(2000))")
        let runs = scratch.lines("runs.log").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
        #expect(runs == [
            "start \(first.eventID)", "done \(first.eventID)", "start \(stuck.eventID)", "start \(stuck.eventID)",
            "done \(stuck.eventID)",
        ])
    }

    @Test("Invalid exec settings exit with status 2 and one line naming the problem", arguments: [
        (["exec", "--brokers", "127.0.0.1:9"], "command"),
        (["exec", "--brokers", "127.0.0.1:9", "--timeout", "0", "--", "true"], "timeout"),
        (["exec", "--brokers", "127.0.0.1:9", "--source-database", "", "--", "true"], "source database"),
        (["exec", "--brokers", "127.0.0.1:9", "--sequence-gap-timeout", "-1", "--", "true"], "sequence-gap-timeout"),
        (["schema-state", "--brokers", "127.0.0.1:9", "--state-topic", "schema-changes"], "state-topic"),
        (["sdk-sync", "--brokers", "127.0.0.1:9", "--out", "/tmp/outbox-sdk-unused", "--bootstrap-from", "schema-changes"],
         "bootstrap topic"),
        (["sdk-sync", "--brokers", "127.0.0.1:9", "--out", "/tmp/outbox-sdk-unused", "--source-database", ""],
         "source database"),
    ])
    func invalidSettings(arguments: [String], problem: String) async throws {
        let process = try RelayProcess.launch(arguments, label: "exec-settings")
        #expect(try await process.waitForExit(timeout: .seconds(60)) == 2)
        let lines = process.standardErrorLines
        #expect(lines.count == 1 && lines[0].contains(problem), "\(lines)")
    }

    @Test("examples/markdown-docs.sh writes one Markdown page per table and an index per tenant, and follows drops")
    func markdownDocsExample() async throws {
        let scratch = try ScratchDirectory()
        let broker = try ExecTestBroker(group: "exec-docs")
        let example = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent()
            .appendingPathComponent("examples/markdown-docs.sh")
        let events = SyntheticEvent.shortHistory.filter { $0.kind == "ddl" }
        try await produce(events, to: broker.topic, on: broker.broker)
        let runtime = try broker.runtime(command: [example.path, scratch.path], maxAttempts: 1)
        try await withRunningConsumer(runtime) {
            try await waitUntil("globex's page is written and acme's scratch page removed", timeout: .seconds(120)) {
                scratch.exists("globex/tenant_globex.invoices.md") && !scratch.exists("acme/tenant_acme.scratch.md")
                    && scratch.text("acme/tenant_acme.orders.md").contains("total")
            }
        }
        #expect(try await broker.deadLetters().isEmpty)
        let orders = scratch.text("acme/tenant_acme.orders.md")
        #expect(orders.contains("# tenant_acme.orders"))
        #expect(orders.contains("| total | numeric(12,2) | yes |"))
        #expect(scratch.text("acme/README.md").contains("[tenant_acme.orders](tenant_acme.orders.md)"))
        #expect(!scratch.text("acme/README.md").contains("scratch"))
        #expect(scratch.text("globex/README.md").contains("[tenant_globex.invoices](tenant_globex.invoices.md)"))
    }
}

/// A mock cluster with the events topic (one partition, so order across tenants is the
/// production order) and the group's dead-letter topic.
struct ExecTestBroker {
    let broker: KafkaDevelopmentBroker
    let group: String
    let topic = "schema-changes"

    init(group: String) throws {
        broker = try KafkaDevelopmentBroker(brokers: 1, logger: makeKafkaTestLogger("test.broker"))
        self.group = group
        try broker.createTopic(topic, partitions: 1)
        try broker.createTopic("\(group).dead-letter", partitions: 1)
    }

    func configuration() -> ConsumerRuntimeConfiguration {
        var configuration = ConsumerRuntimeConfiguration(brokers: broker.bootstrapServers, groupID: group)
        configuration.topics = [topic]
        configuration.retryBackoff = .milliseconds(50)
        configuration.maxRetryBackoff = .milliseconds(200)
        configuration.pollTimeout = .milliseconds(100)
        configuration.consumerProperties = MockConsumerGroup.properties
        return configuration
    }

    func runtime(command: [String], maxAttempts: Int, timeout: Duration = .seconds(60)) throws -> ConsumerRuntime {
        var configuration = configuration()
        configuration.maxAttempts = maxAttempts
        var exec = ExecConfiguration(command: command)
        exec.timeout = timeout
        return try ConsumerRuntime(
            configuration: configuration, handler: ExecHandler(configuration: exec, logger: testLogger()),
            logger: testLogger())
    }

    func deadLetters() async throws -> [IndependentKafkaClient.Record] {
        try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers).consume(topic: "\(group).dead-letter")
    }
}

/// A temporary directory for a test's commands to write into, removed afterwards.
final class ScratchDirectory: Sendable {
    let url: URL
    var path: String { url.path }

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("consumer-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    func text(_ name: String) -> String {
        (try? String(contentsOf: url.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    func lines(_ name: String) -> [String] {
        text(name).split(separator: "\n").map(String.init)
    }

    func exists(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent(name).path)
    }
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
func isAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    guard let afterName = stat.range(of: ") ") else { return false }
    return !stat[afterName.upperBound...].hasPrefix("Z")
}
