import Consumers
import Foundation
import Kafka
import Logging
import Synchronization
import TestSupport
import Testing

/// What the runtime lets through to a handler: `tenant_seq` gaps and duplicates, and events of
/// source databases the consumer does not follow. The events are produced to the mock broker
/// here because sql/016 (which emits `tenant_seq`) is on another branch; once merged, the gap
/// test should also run end to end, with a gap made by dead-lettering one outbox row.
@Suite("Consumer admission: tenant_seq gaps and duplicates, source databases")
struct EventAdmissionTests {
    @Test("A consumer fed a tenant_seq gap stops at it, reports it and dead-letters what follows; duplicates are skipped; other tenants go on")
    func gapsAndDuplicates() async throws {
        let broker = try ExecTestBroker(group: "admission-gap")
        let events = [
            SyntheticEvent(tenant: "acme", tenantSeq: 1, table: "a1"),
            SyntheticEvent(tenant: "acme", tenantSeq: 2, table: "a2"),
            SyntheticEvent(tenant: "acme", tenantSeq: 2, table: "a2-again"),
            SyntheticEvent(tenant: "globex", tenantSeq: 7, table: "g7"),
            SyntheticEvent(tenant: "acme", tenantSeq: 3, table: "a3"),
            SyntheticEvent(tenant: "acme", tenantSeq: 5, table: "a5-after-gap"),
            SyntheticEvent(tenant: "globex", tenantSeq: 8, table: "g8"),
            SyntheticEvent(tenant: "acme", tenantSeq: 6, table: "a6-after-gap"),
        ]
        try await produce(events, to: broker.topic, on: broker.broker)
        let handler = RecordingHandler { _, _ in nil }
        var configuration = broker.configuration()
        configuration.sequenceGapTimeout = .seconds(1)
        let runtime = try ConsumerRuntime(configuration: configuration, handler: handler, logger: testLogger())
        try await withRunningConsumer(runtime) {
            try await waitUntil("the events after the gap are dead-lettered and the rest applied", timeout: .seconds(120)) {
                guard handler.succeeded.contains("g8") else { return false }
                return try await broker.deadLetters().count == 2
            }
        }
        #expect(handler.succeeded == ["a1", "a2", "g7", "a3", "g8"], "nothing of acme applied past the gap")
        #expect(runtime.skipped.duplicates == 1)
        #expect(runtime.skipped.gaps == 2)
        let reasons = try await broker.deadLetters().compactMap { $0.header("dead_letter_reason") }
        #expect(reasons == [
            "tenant_seq gap: expected 4 for tenant acme, got 5; not applied",
            "tenant_seq gap: expected 4 for tenant acme, got 6; not applied",
        ])
    }

    @Test("By default a consumer follows the first source database it sees, skipping and counting the others; --source-database chooses")
    func sourceDatabases() async throws {
        let broker = try ExecTestBroker(group: "admission-database")
        let events = [
            SyntheticEvent(tenant: "acme", tenantSeq: 1, database: "app", table: "app1"),
            SyntheticEvent(tenant: "acme", tenantSeq: 1, database: "billing", table: "billing1"),
            SyntheticEvent(tenant: "acme", tenantSeq: 2, database: "app", table: "app2"),
            SyntheticEvent(tenant: "acme", tenantSeq: 2, database: "billing", table: "billing2"),
        ]
        try await produce(events, to: broker.topic, on: broker.broker)

        let following = RecordingHandler { _, _ in nil }
        let firstSeen = try ConsumerRuntime(configuration: broker.configuration(), handler: following, logger: testLogger())
        try await withRunningConsumer(firstSeen) {
            try await waitUntil("every record is committed", timeout: .seconds(120)) {
                firstSeen.skipped.otherDatabase == 2 && firstSeen.lag.partitions.first?.lag == 0
            }
        }
        #expect(following.succeeded == ["app1", "app2"])

        var chosen = broker.configuration()
        chosen.groupID = "admission-database-billing"
        chosen.sourceDatabases = ["billing"]
        let billing = RecordingHandler { _, _ in nil }
        let named = try ConsumerRuntime(configuration: chosen, handler: billing, logger: testLogger())
        try await withRunningConsumer(named) {
            try await waitUntil("every record is committed", timeout: .seconds(120)) {
                named.skipped.otherDatabase == 2 && named.lag.partitions.first?.lag == 0
            }
        }
        #expect(billing.succeeded == ["billing1", "billing2"], "each database's tenant_seq is tracked on its own")
        #expect(named.skipped.gaps == 0 && named.skipped.duplicates == 0)
    }
}

/// The last `tenant_seq` is kept with the consumer's own state, so a restarted consumer, or a
/// new group reading the topic again, still skips what the state already holds.
@Suite("Consumer admission: tenant_seq persisted with the state")
struct PersistedSequenceTests {
    @Test("sdk-sync restarted on a re-read topic skips the tenant_seq numbers its state holds and stops at a gap")
    func sdkSyncRemembersSequence() async throws {
        let scratch = try ScratchDirectory()
        try await rememberedAcrossRestart(group: "persisted-sdk") {
            SDKSyncHandler(outputDirectory: scratch.url, logger: testLogger())
        }
        let index = scratch.text("acme/src/index.ts")
        #expect(index.contains("orders") && !index.contains("after_gap"), "\(index)")
    }

    @Test("warehouse-sync restarted on a re-read topic skips the tenant_seq numbers applied_events holds and stops at a gap")
    func warehouseSyncRemembersSequence() async throws {
        let warehouse = try await TestDatabase.create("seqwh")
        let handlers = Mutex<[WarehouseSyncHandler]>([])
        try await rememberedAcrossRestart(group: "persisted-warehouse") {
            let handler = WarehouseSyncHandler(
                configuration: WarehouseSyncConfiguration(warehouseURL: warehouse.url), logger: Logger(label: "test.warehouse-sync"))
            handlers.withLock { $0.append(handler) }
            return handler
        }
        let catalog = try await WarehouseSyncFixture.catalog(of: try await warehouse.connect(), excluding: ["outbox_warehouse"])
        #expect(catalog.contains { $0.contains("orders") } && !catalog.contains { $0.contains("after_gap") }, "\(catalog)")
        for handler in handlers.withLock({ $0 }) { await handler.disconnect() }
        try? await warehouse.drop()
    }

    /// Feeds a handler a DDL and a domain event, then has a fresh handler on the same state read
    /// the topic again (a new group) with an event after a missing number.
    private func rememberedAcrossRestart(
        group: String, handler makeHandler: () -> any TenantSequenceRecording
    ) async throws {
        let broker = try ExecTestBroker(group: group)
        let applied = [
            SyntheticEvent(tenant: "acme", tenantSeq: 1, table: "orders"),
            SyntheticEvent(kind: "domain", command: "order.placed", tenant: "acme", tenantSeq: 2, table: nil),
        ]
        try await produce(applied, to: broker.topic, on: broker.broker)
        let handler = makeHandler()
        let first = try ConsumerRuntime(configuration: broker.configuration(), handler: handler, logger: testLogger())
        try await withRunningConsumer(first) {
            try await waitUntil("both events are committed", timeout: .seconds(120)) {
                first.lag.partitions.first?.lag == 0
            }
        }
        #expect(try await handler.lastAppliedSequence(tenant: "acme", database: "app") == 2,
                "a domain event advances the recorded sequence too")

        try await produce([SyntheticEvent(tenant: "acme", tenantSeq: 4, table: "after_gap")], to: broker.topic, on: broker.broker)
        var rereading = broker.configuration()
        rereading.groupID = "\(group)-again"
        rereading.deadLetterTopic = "\(group).dead-letter"
        rereading.sequenceGapTimeout = .seconds(1)
        let second = try ConsumerRuntime(configuration: rereading, handler: makeHandler(), logger: testLogger())
        try await withRunningConsumer(second) {
            try await waitUntil("the event after the gap is dead-lettered", timeout: .seconds(120)) {
                try await broker.deadLetters().count == 1
            }
        }
        #expect(second.skipped.duplicates == 2)
        #expect(second.skipped.gaps == 1)
    }
}
