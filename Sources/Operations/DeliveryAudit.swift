public import Kafka
public import Outbox
import Postgres

/// The outcome of checking delivered rows against what Kafka holds at their recorded positions.
public struct AuditReport: Sendable, Encodable {
    /// What is wrong with one row's recorded position.
    public enum Kind: String, Sendable, Encodable {
        /// The offset lies below the partition's log start: the broker's retention removed the
        /// record, so it can no longer be checked. Expected on an old outbox; it fails an audit
        /// only when asked to (`--fail-on-expired`).
        case expired
        /// No record can be read there: the offset is at or beyond the partition's end (it was
        /// never written, or the topic was recreated), the partition does not exist, the offset
        /// is not a valid one, or the record was compacted away. Always a failure: nothing proves
        /// the event was delivered.
        case missing
        /// A record is there but it is not this event: the recorded position is wrong.
        case mismatched
    }

    public struct Finding: Sendable, Encodable {
        public var id: Int64
        public var eventID: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var kind: Kind
        public var problem: String

        enum CodingKeys: String, CodingKey {
            case id, topic, partition, offset, kind, problem
            case eventID = "event_id"
        }
    }

    public var checked = 0
    public var ok = 0
    public var expired = 0
    public var missing = 0
    public var mismatched = 0
    public var findings: [Finding] = []

    /// Whether some row's position could not be verified: any missing or mismatched row, and
    /// expired rows too when `failOnExpired`.
    public func failed(failOnExpired: Bool) -> Bool {
        missing > 0 || mismatched > 0 || (failOnExpired && expired > 0)
    }
}

/// Proves where each delivered event went: reads the record at the topic, partition and offset
/// its row records and checks that the record's `event_id` header and key match the row.
///
/// Rows are read a page at a time and each page's positions are read partition by partition in
/// one forward pass, so an audit costs about one fetch per batch of records instead of one
/// round trip per row. Memory holds one page of rows and their records.
public struct DeliveryAudit: Sendable {
    /// Rows per page: large enough that a partition's pass covers many records, small enough
    /// that a page's records stay a few megabytes.
    public static let defaultPageSize = 5000

    public let operations: OutboxOperations
    public let reader: KafkaRecordReader

    public init(operations: OutboxOperations, reader: KafkaRecordReader) {
        self.operations = operations
        self.reader = reader
    }

    /// Audits processed rows with ids in `from...to` (either open) of `tenant` (or all),
    /// calling `progress(checked, total)` after each page.
    public func run(
        from: Int64?, to: Int64?, tenant: String?, pageSize: Int = defaultPageSize,
        progress: (Int, Int) -> Void = { _, _ in }
    ) async throws -> AuditReport {
        precondition(pageSize > 0, "an audit page needs at least one row")
        let total = try await operations.deliveredCount(from: from, to: to, tenant: tenant)
        var report = AuditReport()
        var lastID: Int64 = 0
        while true {
            let page = try await operations.deliveredRows(from: from, to: to, tenant: tenant, after: lastID, limit: pageSize)
            guard let last = page.last else { break }
            let partitions = try await readPositions(of: page)
            // Findings stay in id order, whatever order the partitions were read in.
            for row in page {
                report.checked += 1
                guard let (kind, problem) = check(row, against: partitions[PartitionKey(row)]) else {
                    report.ok += 1
                    continue
                }
                switch kind {
                case .expired: report.expired += 1
                case .missing: report.missing += 1
                case .mismatched: report.mismatched += 1
                }
                report.findings.append(AuditReport.Finding(
                    id: row.id, eventID: row.eventID, topic: row.topic, partition: row.partition, offset: row.offset,
                    kind: kind, problem: problem))
            }
            lastID = last.id
            progress(report.checked, total)
        }
        return report
    }

    private struct PartitionKey: Hashable {
        var topic: String
        var partition: Int32

        init(_ row: DeliveredRow) {
            topic = row.topic
            partition = row.partition
        }
    }

    /// What one partition's pass found: a lookup per wanted offset, or why the partition could
    /// not be read at all (it does not exist), which makes each of its rows missing.
    private typealias PartitionRead = Result<[Int64: KafkaRecordLookup], KafkaError>

    /// Reads every position `page` records, one forward pass per partition.
    private func readPositions(of page: [DeliveredRow]) async throws -> [PartitionKey: PartitionRead] {
        var reads: [PartitionKey: PartitionRead] = [:]
        for (key, rows) in Dictionary(grouping: page, by: PartitionKey.init) {
            do {
                reads[key] = .success(try await reader.read(topic: key.topic, partition: key.partition, offsets: rows.map(\.offset)))
            } catch {
                guard error.code == .unknownTopicOrPartition else { throw error }
                reads[key] = .failure(error)
            }
        }
        return reads
    }

    private typealias Problem = (kind: AuditReport.Kind, description: String)

    private func check(_ row: DeliveredRow, against partition: PartitionRead?) -> Problem? {
        let lookup: KafkaRecordLookup?
        switch partition {
        case .success(let lookups)?: lookup = lookups[row.offset]
        case .failure(let error)?: return (.missing, "\(error)")
        case nil: lookup = nil
        }
        switch lookup {
        case .record(let record)?:
            return compare(row, with: record)
        case .deleted(let partitionStart)? where row.offset < 0:
            return (.missing, "\(row.offset) is not a valid offset; the partition starts at \(partitionStart)")
        case .deleted(let partitionStart)?:
            return (.expired, "deleted by retention: the partition now starts at \(partitionStart)")
        case .notWritten(let partitionEnd)?:
            return (.missing, "beyond the partition's end: its next offset is \(partitionEnd)")
        case .absent?:
            return (.missing, "no record at this offset (removed by compaction, or a transaction marker)")
        case nil:
            return (.missing, "the reader returned nothing for this offset")
        }
    }

    private func compare(_ row: DeliveredRow, with record: KafkaMessage) -> Problem? {
        let eventID = record.headers.first { $0.name == "event_id" }?.value.map { String(decoding: $0, as: UTF8.self) }
        let key = record.key.map { String(decoding: $0, as: UTF8.self) }
        if eventID != row.eventID {
            return (.mismatched, "the record there is event \(eventID ?? "without an event_id header")")
        }
        if key != row.tenantKey {
            return (.mismatched, "the record there has key \(key ?? "null"), not \(row.tenantKey ?? "null")")
        }
        return nil
    }
}
