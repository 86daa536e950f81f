public import Foundation
public import Logging

/// The `sdk-sync` consumer: keeps, per tenant, an npm package of TypeScript types at
/// `<outputDirectory>/<tenant>/` (`package.json`, `tsconfig.json`, `src/index.ts`, the compiled
/// `dist/` and `CHANGELOG.md`), following the tenant's schema changes.
///
/// Idempotent by event id: the tenant's model, version, changelog and the ids of applied events
/// live in `<tenant>/.outbox-sdk-state.json`. An event already recorded there changes nothing.
/// Otherwise the new state is computed, the package files are rendered from it and written
/// atomically, and the state file is written last. A crash between the two leaves the event
/// unrecorded, so its redelivery re-renders the same bytes from the same state and then records
/// it: nothing is applied twice (the changelog is rendered from the state, never appended to) and
/// nothing is lost (the offset is committed only after this returns).
///
/// Drift events (DDL the capture's triggers never saw, found by `reconcile()`) are applied like
/// DDL: they carry the table's real shape, and without them the package would keep describing a
/// table that changed, or miss one that was created. A `snapshot` event makes the package's object
/// equal to its shape and `snapshot_end` removes what the snapshot did not list, in the next major
/// version (``SDKSnapshot``).
///
/// Events without a tenant are ignored (no file is touched); a tenant's other events (domain
/// events) only advance the recorded `tenant_seq` of a tenant that already has a package. A
/// tenant's DDL event that changes nothing in the package (a changed default, `CREATE SCHEMA`)
/// is only recorded as applied. The applied-id list grows by one id per DDL or drift event of the
/// tenant.
///
/// The last `tenant_seq` lives in the same state file (``TenantSequenceRecording``), so gaps
/// and duplicates are told apart across restarts. One output directory serves one source
/// database: the runtime follows one unless told otherwise.
public struct SDKSyncHandler: BootstrappableHandler {
    public static let stateFileName = ".outbox-sdk-state.json"

    public let name = "sdk-sync"
    public let outputDirectory: URL
    /// The npm scope of every package. Default: `@outbox-sdk`.
    public let packageScope: String
    private let logger: Logger

    public init(outputDirectory: URL, packageScope: String = "@outbox-sdk", logger: Logger) {
        self.outputDirectory = outputDirectory
        self.packageScope = packageScope
        self.logger = logger
    }

    /// Where a tenant's package lives.
    public func packageDirectory(forTenant tenant: String) -> URL {
        outputDirectory.appendingPathComponent(SDKNames.directoryName(tenant: tenant), isDirectory: true)
    }

    public func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
        let event = consumed.event
        guard let tenant = event.tenantID else { return }
        let directory = packageDirectory(forTenant: tenant)
        let stateURL = directory.appendingPathComponent(Self.stateFileName)
        guard ["ddl", "drift", "snapshot", "snapshot_end"].contains(event.kind) else {
            try recordSequence(of: event, at: stateURL, tenant: tenant)
            return
        }
        let state = try loadState(at: stateURL, tenant: tenant)
        guard !state.hasApplied(event.eventID) else {
            logger.debug("event already applied", metadata: ["event-id": "\(event.eventID)", "tenant": "\(tenant)"])
            return
        }
        var (next, changes) = switch event.kind {
        case "snapshot": SDKStateUpdate.apply(SDKSnapshot.asCreate(event), to: state)
        case "snapshot_end": SDKSnapshot.removeUnlisted(event, from: state)
        default: SDKStateUpdate.apply(event, to: state)
        }
        next.recordSequence(event.tenantSeq)
        do {
            AtomicFileWriter.removeLeftovers(in: directory)
            AtomicFileWriter.removeLeftovers(in: directory.appendingPathComponent("src"))
            AtomicFileWriter.removeLeftovers(in: directory.appendingPathComponent("dist"))
            if !changes.isEmpty {
                for file in TypeScriptRenderer(packageScope: packageScope).files(for: next) {
                    try AtomicFileWriter.write(Array(file.content.utf8), to: directory.appendingPathComponent(file.path))
                }
            }
            try AtomicFileWriter.write(try Self.encode(next), to: stateURL)
        } catch {
            throw .retriable("writing the package of tenant \(tenant): \(error)")
        }
        if !changes.isEmpty {
            logger.info("SDK updated", metadata: [
                "tenant": "\(tenant)", "version": "\(next.version.map(\.description) ?? "-")",
                "event-id": "\(event.eventID)", "changes": "\(changes.count)"])
        }
    }

    /// No tenant directory holds a state file.
    public func holdsNoState() async throws(EventHandlerError) -> Bool {
        let tenants = (try? FileManager.default.contentsOfDirectory(atPath: outputDirectory.path)) ?? []
        return !tenants.contains { tenant in
            FileManager.default.fileExists(
                atPath: outputDirectory.appendingPathComponent(tenant).appendingPathComponent(Self.stateFileName).path)
        }
    }

    public func lastAppliedSequence(tenant: String, database: String?) async throws(EventHandlerError) -> Int64? {
        let stateURL = packageDirectory(forTenant: tenant).appendingPathComponent(Self.stateFileName)
        return try loadState(at: stateURL, tenant: tenant).lastTenantSeq
    }

    /// Advances the recorded sequence past an event that changes nothing in the package, for a
    /// tenant that has one (a tenant without a package starts from whatever comes first).
    private func recordSequence(of event: SchemaChangeEvent, at stateURL: URL, tenant: String) throws(EventHandlerError) {
        guard event.tenantSeq != nil, FileManager.default.fileExists(atPath: stateURL.path) else { return }
        var state = try loadState(at: stateURL, tenant: tenant)
        let before = state.lastTenantSeq
        state.recordSequence(event.tenantSeq)
        guard state.lastTenantSeq != before else { return }
        do {
            try AtomicFileWriter.write(try Self.encode(state), to: stateURL)
        } catch {
            throw .retriable("writing the state of tenant \(tenant): \(error)")
        }
    }

    private func loadState(at url: URL, tenant: String) throws(EventHandlerError) -> SDKState {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            if FileManager.default.fileExists(atPath: url.path) {
                throw .retriable("cannot read \(url.path)")
            }
            return SDKState(tenant: tenant)
        }
        do {
            let state = try JSONDecoder().decode(SDKState.self, from: data)
            guard state.format == 1, SDKNames.same(state.tenant, tenant) else {
                throw EventHandlerError.permanent(
                    "\(url.path) has format \(state.format) for tenant \(state.tenant), expected format 1 for \(tenant)")
            }
            return state
        } catch let error as EventHandlerError {
            throw error
        } catch {
            // Written atomically, so this is damage from outside; every later event of the tenant
            // will fail the same way until someone restores or deletes the file.
            throw .permanent("unreadable SDK state \(url.path): \(error)")
        }
    }

    static func encode(_ state: SDKState) throws(AtomicFileWriter.Failure) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(state)) + [UInt8(ascii: "\n")]
        } catch {
            throw AtomicFileWriter.Failure(description: "encoding the SDK state: \(error)")
        }
    }
}
