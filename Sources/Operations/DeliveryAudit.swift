public import Kafka
import Postgres

/// The outcome of checking delivered rows against what Kafka holds at their recorded positions.
public struct AuditReport: Sendable, Encodable {
    public struct Finding: Sendable, Encodable {
        public var id: Int64
        public var eventID: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var problem: String

        enum CodingKeys: String, CodingKey {
            case id, topic, partition, offset, problem
            case eventID = "event_id"
        }
    }

    public var checked = 0
    public var ok = 0
    /// The offset no longer exists (retention, a recreated topic) or never did.
    public var missing = 0
    /// A record is there but it is not this event: the recorded position is wrong.
    public var mismatched = 0
    public var findings: [Finding] = []
}

/// Proves where each delivered event went: reads the record at the topic, partition and offset
/// its row records and checks that the record's `event_id` header and key match the row.
public struct DeliveryAudit: Sendable {
    public let operations: OutboxOperations
    public let reader: KafkaRecordReader

    public init(operations: OutboxOperations, reader: KafkaRecordReader) {
        self.operations = operations
        self.reader = reader
    }

    /// Audits processed rows with ids in `from...to` (either open) of `tenant` (or all),
    /// calling `progress(checked, total)` after each page.
    public func run(
        from: Int64?, to: Int64?, tenant: String?, pageSize: Int = 500,
        progress: (Int, Int) -> Void = { _, _ in }
    ) async throws -> AuditReport {
        let total = try await operations.deliveredCount(from: from, to: to, tenant: tenant)
        var report = AuditReport()
        var lastID: Int64 = 0
        while true {
            let page = try await operations.deliveredRows(from: from, to: to, tenant: tenant, after: lastID, limit: pageSize)
            guard let last = page.last else { break }
            for row in page {
                report.checked += 1
                switch try await check(row) {
                case nil:
                    report.ok += 1
                case .missing(let problem):
                    report.missing += 1
                    report.findings.append(finding(row, problem))
                case .mismatched(let problem):
                    report.mismatched += 1
                    report.findings.append(finding(row, problem))
                }
            }
            lastID = last.id
            progress(report.checked, total)
        }
        return report
    }

    private enum Problem {
        case missing(String)
        case mismatched(String)
    }

    private func check(_ row: DeliveredRow) async throws -> Problem? {
        let record: KafkaMessage?
        do {
            record = try await reader.read(topic: row.topic, partition: row.partition, offset: row.offset)
        } catch {
            guard error.code == .offsetOutOfRange || error.code == .unknownTopicOrPartition else { throw error }
            return .missing("\(error)")
        }
        guard let record else { return .missing("no record at this offset") }
        let eventID = record.headers.first { $0.name == "event_id" }?.value.map { String(decoding: $0, as: UTF8.self) }
        let key = record.key.map { String(decoding: $0, as: UTF8.self) }
        if eventID != row.eventID {
            return .mismatched("the record there is event \(eventID ?? "without an event_id header")")
        }
        if key != row.tenantKey {
            return .mismatched("the record there has key \(key ?? "null"), not \(row.tenantKey ?? "null")")
        }
        return nil
    }

    private func finding(_ row: DeliveredRow, _ problem: String) -> AuditReport.Finding {
        AuditReport.Finding(
            id: row.id, eventID: row.eventID, topic: row.topic, partition: row.partition, offset: row.offset,
            problem: problem)
    }
}
