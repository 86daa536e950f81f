import ArgumentParser
import Foundation
import Operations

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the outbox backlog and where each tenant's events last landed.")

    @OptionGroup var outbox: OutboxLocation
    @Flag(help: "Print JSON, always with the keys pending, oldest_pending_age_seconds (null when nothing is pending), dead, processed, tenants.")
    var json = false

    func run() async throws {
        let operations = try await outbox.connect()
        let status = try await reportingFailures { try await operations.status() }
        if json {
            try printJSON(status)
            return
        }
        print("pending:   \(status.pending)")
        print("oldest pending: \(status.oldestPendingAgeSeconds.map { String(format: "%.1f s ago", $0) } ?? "none")")
        print("dead:      \(status.dead)")
        print("processed: \(status.processed)")
        for tenant in status.tenants {
            print("  \(tenant.tenant): \(tenant.topic)[\(tenant.partition)]@\(tenant.offset) at \(tenant.deliveredAt)")
        }
    }
}
