import Consumers
import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

/// The runtime between the real relay and a test handler: retries, dead letters, and offsets
/// committed only after the handler returned.
@Suite("Consumer runtime: at-least-once, retries, dead letters, lag")
struct ConsumerRuntimeTests {
    @Test("Retriable failures are retried with backoff, permanent and undecodable records dead-lettered with the reason, offsets committed")
    func retriesAndDeadLetters() async throws {
        let environment = try await OutboxTestEnvironment.start("runtime_dead")
        let sql = try await environment.database.connect()
        let group = "runtime-test"
        try environment.broker.createTopic("\(group).dead-letter", partitions: 1)
        let handler = RecordingHandler { event, attempt in
            switch event.table?.name {
            case "flaky" where attempt < 3: .retriable("flaky attempt \(attempt)")
            case "bad": .permanent("cannot apply bad")
            default: nil
            }
        }
        let runtime = try ConsumerRuntime(
            configuration: testConfiguration(environment, group: group), handler: handler, logger: testLogger())
        try await withRunningRelay(environment.relayConfiguration()) {
            try await withRunningConsumer(runtime) {
                try await sql.execute(script: """
                    CREATE SCHEMA tenant_a;
                    CREATE TABLE tenant_a.first (id int);
                    CREATE TABLE tenant_a.flaky (id int);
                    CREATE TABLE tenant_a.bad (id int);
                    CREATE TABLE tenant_a.last (id int);
                    """)
                let garbage = try await environment.kafka.produceWithKafkaPython(
                    topic: OutboxTestEnvironment.topic, key: "a", value: "not json", header: (name: "x", value: "y"))
                try await environment.waitUntilAllDelivered(sql)
                try await waitUntil("the handler applied the last table and both rejects are dead-lettered") {
                    guard handler.succeeded.contains("last") else { return false }
                    return try await environment.kafka.consume(topic: "\(group).dead-letter").count == 2
                }
                #expect(handler.attempts["flaky"] == 3)
                #expect(handler.attempts["bad"] == 1)
                #expect(handler.succeeded.filter { $0 != "-" } == ["first", "flaky", "last"])

                let deadLetters = try await environment.kafka.consume(topic: "\(group).dead-letter")
                let bad = try #require(deadLetters.first { $0.header("dead_letter_reason") == "cannot apply bad" })
                #expect(bad.header("dead_letter_consumer") == "recording")
                #expect(bad.header("dead_letter_original_topic") == OutboxTestEnvironment.topic)
                #expect(bad.header("dead_letter_attempts") == "1")
                #expect(bad.header("event_id") != nil, "the relay's headers travel with the dead letter")
                #expect(bad.key == "a")
                let undecodable = try #require(deadLetters.first { $0.payload == "not json" })
                #expect(undecodable.header("dead_letter_reason")?.hasPrefix("undecodable event") == true)
                #expect(undecodable.header("dead_letter_original_partition") == String(garbage.partition))
                #expect(undecodable.header("dead_letter_original_offset") == String(garbage.offset))

                try await waitUntil("the lag snapshot shows everything processed") {
                    let lag = runtime.lag
                    return !lag.partitions.isEmpty && lag.partitions.allSatisfy { $0.lag == 0 }
                }
            }
        }

        // Everything was committed: the same group starting again sees only new events.
        let relaunched = RecordingHandler { _, _ in nil }
        let second = try ConsumerRuntime(
            configuration: testConfiguration(environment, group: group), handler: relaunched, logger: testLogger())
        try await withRunningRelay(environment.relayConfiguration()) {
            try await withRunningConsumer(second) {
                try await sql.execute(script: "CREATE TABLE tenant_a.later (id int)")
                try await waitUntil("the new member applied the new table") { relaunched.succeeded.contains("later") }
            }
        }
        #expect(relaunched.succeeded == ["later"])
        await environment.drop()
    }

    @Test("A record whose handler never returned is delivered again after a crash; committed ones are not")
    func uncommittedIsRedelivered() async throws {
        let environment = try await OutboxTestEnvironment.start("runtime_crash")
        let sql = try await environment.database.connect()
        let group = "runtime-crash"
        let hanging = RecordingHandler(hangOn: "stuck")
        let runtime = try ConsumerRuntime(
            configuration: testConfiguration(environment, group: group), handler: hanging, logger: testLogger())
        try await withRunningRelay(environment.relayConfiguration()) {
            // Not a graceful shutdown: the service task is cancelled while the handler is inside
            // "stuck", as when the process dies.
            let task = Task { try await runtime.run() }
            try await sql.execute(script: """
                CREATE SCHEMA tenant_b;
                CREATE TABLE tenant_b.before (id int);
                CREATE TABLE tenant_b.stuck (id int);
                """)
            try await waitUntil("the handler is stuck") { hanging.attempts["stuck"] == 1 }
            task.cancel()
            _ = try? await task.value
            #expect(hanging.succeeded.filter { $0 != "-" } == ["before"])

            let healthy = RecordingHandler { _, _ in nil }
            let second = try ConsumerRuntime(
                configuration: testConfiguration(environment, group: group), handler: healthy, logger: testLogger())
            try await withRunningConsumer(second) {
                try await sql.execute(script: "CREATE TABLE tenant_b.after (id int)")
                try await waitUntil("the new member applied the new table") { healthy.succeeded.contains("after") }
            }
            #expect(healthy.succeeded == ["stuck", "after"])
        }
        await environment.drop()
    }

    @Test("Two members of one group share the partitions; together they apply every event, repeats only across the rebalance")
    func twoMembersSharePartitions() async throws {
        let environment = try await OutboxTestEnvironment.start("runtime_share")
        let sql = try await environment.database.connect()
        let tenants = (1...12).map { "s\($0)" }
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.execute(script: tenants.map { "CREATE SCHEMA tenant_\($0); CREATE TABLE tenant_\($0).t_\($0) (id int);" }
                .joined(separator: "\n"))
            try await environment.waitUntilAllDelivered(sql)
        }
        let handlers = [RecordingHandler { _, _ in nil }, RecordingHandler { _, _ in nil }]
        let runtimes = try handlers.map { handler in
            try ConsumerRuntime(
                configuration: testConfiguration(environment, group: "runtime-share"), handler: handler, logger: testLogger())
        }
        try await withRunningConsumer(runtimes[0]) {
            try await withRunningConsumer(runtimes[1]) {
                try await waitUntil("every table was applied by one of the members", timeout: .seconds(60)) {
                    Set(handlers.flatMap(\.succeeded)).isSuperset(of: tenants.map { "t_\($0)" })
                }
            }
        }
        let applied = handlers.flatMap(\.succeeded).filter { $0 != "-" }
        // At least once: when the second member joins, records whose commit the rebalance
        // refused are delivered again (handlers are idempotent by event id), however many of a
        // partition's records that was. One rebalance redelivers a record once at most.
        #expect(Set(applied) == Set(tenants.map { "t_\($0)" }))
        #expect(Dictionary(grouping: applied, by: { $0 }).values.allSatisfy { $0.count <= 2 },
                "a record redelivered more than once by one rebalance: \(applied)")
        #expect(handlers.allSatisfy { !$0.succeeded.isEmpty }, "both members got partitions")
        #expect(Set(runtimes[0].lag.partitions.map(\.partition)).isDisjoint(with: runtimes[1].lag.partitions.map(\.partition)))
        await environment.drop()
    }
}

// MARK: - Helpers shared by the consumer tests

func testLogger() -> Logger {
    makeKafkaTestLogger("test.consumer")
}

/// A runtime configuration aimed at the test environment, reacting quickly.
func testConfiguration(_ environment: OutboxTestEnvironment, group: String) -> ConsumerRuntimeConfiguration {
    var configuration = ConsumerRuntimeConfiguration(brokers: environment.broker.bootstrapServers, groupID: group)
    configuration.topics = [OutboxTestEnvironment.topic]
    configuration.retryBackoff = .milliseconds(50)
    configuration.maxRetryBackoff = .milliseconds(200)
    configuration.lagRefreshInterval = .milliseconds(100)
    configuration.pollTimeout = .milliseconds(100)
    configuration.consumerProperties = MockConsumerGroup.properties
    return configuration
}

/// Runs `runtime` in a service group for the duration of `body`, then shuts it down gracefully.
func withRunningConsumer<T: Sendable>(_ runtime: ConsumerRuntime, _ body: () async throws -> T) async throws -> T {
    let group = ServiceGroup(services: [runtime], logger: testLogger())
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            let result = try await body()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return result
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
    }
}

/// Records what it was handed, per table name (`-` for events without a table), and fails as
/// told: `outcome(event, attempt)` returns the error to throw, or `nil` to succeed.
final class RecordingHandler: EventHandler {
    let name = "recording"
    private let outcome: @Sendable (SchemaChangeEvent, Int) -> EventHandlerError?
    private let hangOn: String?
    private let state = Mutex<(attempts: [String: Int], succeeded: [String])>(([:], []))

    init(outcome: @escaping @Sendable (SchemaChangeEvent, Int) -> EventHandlerError?) {
        self.outcome = outcome
        hangOn = nil
    }

    /// Never returns for the table named `table` (until cancelled).
    init(hangOn table: String) {
        outcome = { _, _ in nil }
        hangOn = table
    }

    var attempts: [String: Int] { state.withLock { $0.attempts } }
    var succeeded: [String] { state.withLock { $0.succeeded } }

    func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
        let table = consumed.event.table?.name ?? "-"
        let attempt = state.withLock { state in
            state.attempts[table, default: 0] += 1
            return state.attempts[table]!
        }
        if table == hangOn {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(3600))
            }
            throw .retriable("cancelled")
        }
        if let error = outcome(consumed.event, attempt) {
            throw error
        }
        state.withLock { $0.succeeded.append(table) }
    }
}
