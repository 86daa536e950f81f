import Consumers
import Foundation
import Logging
import TestSupport
import Testing

/// `snapshot` / `snapshot_end` in sdk-sync and warehouse-sync: "make my state equal to this".
/// The events are built here to the issue-15 contract (sql/016's `platform.snapshot()` is on
/// another branch); once merged, this should also run from a real `SELECT platform.snapshot()`.
@Suite("Snapshots make consumer state equal to the catalog, idempotently")
struct SnapshotConsumerTests {
    static let history = [
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 1, table: "orders"),
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 2, table: "legacy"),
    ]
    /// What the catalog says now: orders gained a column (DDL the triggers missed), legacy is gone.
    static let now: [(name: String, columns: [(name: String, type: String)])] = [
        ("orders", [("id", "integer"), ("total", "numeric(12,2)")]),
    ]

    @Test("sdk-sync: a snapshot updates what changed and removes what is gone, each a major (snapshots carry no compatibility label); the same snapshot again changes no byte")
    func sdkSync() async throws {
        let scratch = try ScratchDirectory()
        let handler = SDKSyncHandler(outputDirectory: scratch.url, logger: testLogger())
        let first = SyntheticEvent.snapshot(tenant: "acme", firstSequence: 3, tables: Self.now)
        for event in Self.history + first {
            try await handler.handle(event.consumed)
        }
        let package = ["acme/src/index.ts", "acme/package.json", "acme/CHANGELOG.md"].map { scratch.text($0) }
        #expect(package[0].contains("total") && !package[0].contains("legacy"), "\(package[0])")
        // 1.0.0 orders, 1.1.0 legacy (additive), 2.0.0 orders corrected by the snapshot, 3.0.0 legacy removed.
        #expect(package[1].contains("\"version\": \"3.0.0\""), "the correction and the removal are majors: \(package[1])")

        // The same snapshot delivered again, and a new snapshot call of the same catalog.
        for event in first + SyntheticEvent.snapshot(tenant: "acme", firstSequence: 5, tables: Self.now) {
            try await handler.handle(event.consumed)
        }
        #expect(["acme/src/index.ts", "acme/package.json", "acme/CHANGELOG.md"].map { scratch.text($0) } == package)
        #expect(try await handler.lastAppliedSequence(tenant: "acme", database: "app") == 6)
    }

    @Test("warehouse-sync: a snapshot brings tables to their shape and drops unlisted ones by the drop policy; the same snapshot again changes nothing")
    func warehouseSync() async throws {
        let warehouse = try await TestDatabase.create("snapwh")
        var configuration = WarehouseSyncConfiguration(warehouseURL: warehouse.url)
        configuration.dropPolicy = .keep
        let handler = WarehouseSyncHandler(configuration: configuration, logger: Logger(label: "test.warehouse-sync"))
        let sql = try await warehouse.connect()
        let first = SyntheticEvent.snapshot(tenant: "acme", firstSequence: 3, tables: Self.now)
        for event in Self.history + first {
            try await handler.handle(event.consumed)
        }
        let catalog = try await WarehouseSyncFixture.catalog(of: sql, excluding: ["outbox_warehouse"])
        #expect(catalog.contains { $0.contains("total") }, "\(catalog)")
        #expect(catalog.contains { $0.contains("legacy__deprecated_") }, "kept as deprecated: \(catalog)")
        #expect(!catalog.contains { $0.hasSuffix(".legacy") || $0.contains(".legacy ") }, "\(catalog)")

        for event in first + SyntheticEvent.snapshot(tenant: "acme", firstSequence: 5, tables: Self.now) {
            try await handler.handle(event.consumed)
        }
        #expect(try await WarehouseSyncFixture.catalog(of: sql, excluding: ["outbox_warehouse"]) == catalog)
        await handler.disconnect()
        try? await warehouse.drop()
    }
}
