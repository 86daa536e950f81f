import ArgumentParser
import Foundation
import Kafka
import Logging
import Operations
import Outbox

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Prove where each processed event went: read the record at its recorded offset and compare.",
        discussion: """
            Reports checked, ok, missing (no record at the offset: at or beyond the partition's end, \
            or no such partition), mismatched (a different record sits there) and expired (the \
            offset fell below the partition's log start: Kafka's retention removed it). Exits 1 \
            when any row is missing or mismatched, or expired with --fail-on-expired.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "Kafka bootstrap servers (default: KAFKA_BROKERS).")
    var brokers: String?
    @Option(help: "A librdkafka property as name=value, repeatable (SASL, SSL, ...).")
    var kafkaProperty: [String] = []
    @Option(help: "First outbox id to check.")
    var fromID: Int64?
    @Option(help: "Last outbox id to check.")
    var toID: Int64?
    @Option(help: "Only this tenant's events.")
    var tenant: String?
    @Option(help: "Rows read from the outbox per page; each page's records are read one partition at a time, in offset order.")
    var pageSize = DeliveryAudit.defaultPageSize
    @Flag(help: "Also fail (exit 1) for rows whose record Kafka's retention already removed.")
    var failOnExpired = false
    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard pageSize > 0 else { throw ValidationError("--page-size must be positive") }
    }

    func run() async throws {
        guard let brokers = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ValidationError("--brokers (or KAFKA_BROKERS) is required")
        }
        let properties: [String: String]
        do {
            properties = try kafkaProperties(from: kafkaProperty)
        } catch {
            throw ValidationError("--kafka-property: \(error.problem)")
        }
        let operations = try await outbox.connect()
        let reader: KafkaRecordReader
        do {
            reader = try KafkaRecordReader(
                bootstrapServers: brokers, properties: properties,
                logger: Logger(label: "outbox-bridge.audit", factory: { _ in SwiftLogNoOpLogHandler() }))
        } catch {
            printError("Kafka brokers \(brokers) unusable: \(error)")
            throw ExitStatus.unreachable
        }
        let audit = DeliveryAudit(operations: operations, reader: reader)
        let progress = ProgressReporter("audit: checked")
        let report = try await reportingFailures {
            try await audit.run(from: fromID, to: toID, tenant: tenant, pageSize: pageSize) { checked, total in
                progress.advance(to: checked, of: total)
            }
        }
        progress.finish(done: report.checked, summary: true)
        if json {
            try printJSON(report)
        } else {
            print("""
                checked: \(report.checked)  ok: \(report.ok)  missing: \(report.missing)  mismatched: \(report.mismatched)  \
                expired: \(report.expired)
                """)
            for finding in report.findings {
                print("  \(finding.kind): outbox id \(finding.id) (event \(finding.eventID)) at \(finding.topic)[\(finding.partition)]@\(finding.offset): \(finding.problem)")
            }
        }
        if report.failed(failOnExpired: failOnExpired) { throw ExitStatus.problemFound }
    }
}
