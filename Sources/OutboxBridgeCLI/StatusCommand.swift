import ArgumentParser
import Foundation
import Operations
import Outbox
import Postgres

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show whether the relay runs and why it is stuck: instances, leases, backlog, retries, dead events.",
        discussion: """
            --fail-if makes it usable from scripts and cron: with a condition that holds, status \
            prints it on standard error and exits with status 1 (a bad condition exits 2). A \
            condition is <measure><operator><value> with an operator among > >= < <= =. \
            Measures: pending, dead (counts), unowned-shards (shards no instance \
            holds), instances (relay instances with a heartbeat in the last minute), and \
            oldest-pending (a duration with a unit: 45s, 5m, 2h, 1d; 0 when nothing is pending). \
            Examples: --fail-if oldest-pending>5m --fail-if dead>0 --fail-if instances<1.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Flag(help: """
        Print JSON, the same document as the HTTP /api/status of a running relay; it always has \
        the keys pending, oldest_pending_age_seconds (null when nothing is pending), dead, \
        processed, tenants, backlog, retrying, dead_letters, recent_deliveries, delivery_rate, \
        instances, unowned_shards, readiness and in_flight (null here), generated_at.
        """)
    var json = false
    @Option(help: "Rows listed per section (tenants by backlog, retrying and dead events, deliveries).")
    var top = OutboxOperations.defaultStatusLimit
    @Option(name: .customLong("fail-if"), help: "Exit 1 when this condition holds, e.g. oldest-pending>5m or dead>0; repeatable.")
    var failConditions: [String] = []

    func validate() throws {
        guard top > 0 else { throw ValidationError("--top must be at least 1, got \(top)") }
        for condition in failConditions {
            _ = try StatusCondition(parsing: condition)
        }
    }

    func run() async throws {
        let conditions = try failConditions.map(StatusCondition.init(parsing:))
        let operations = try await outbox.connect()
        let status = try await reportingFailures { try await operations.status(limit: top) }
        if json {
            try printJSON(status)
        } else {
            print(Self.text(status))
        }
        let met = conditions.filter { $0.holds(for: status) }
        for condition in met {
            printError("condition met: \(condition.text) (\(condition.measure.rawValue) is \(condition.measure.describe(status)))")
        }
        if !met.isEmpty { throw ExitStatus.problemFound }
    }

    /// The status for a person at a terminal.
    static func text(_ status: OutboxStatus) -> String {
        var lines = [
            "pending:   \(status.pending)",
            "oldest pending: \(status.oldestPendingAgeSeconds.map { String(format: "%.1f s ago", $0) } ?? "none")",
            "dead:      \(status.dead)",
            "processed: \(status.processed)",
        ]
        for tenant in status.tenants {
            lines.append("  \(tenant.tenant): \(tenant.topic)[\(tenant.partition)]@\(tenant.offset) at \(tenant.deliveredAt)")
        }
        lines.append("relay instances: \(status.instances.count)")
        for instance in status.instances {
            let shards = instance.shards.isEmpty ? "no shards" : "shards \(instance.shards.map(String.init).joined(separator: ","))"
            lines.append("  \(instance.id) on \(instance.host ?? "?"): heartbeat \(String(format: "%.1f", instance.heartbeatAgeSeconds)) s ago, \(shards)")
        }
        if !status.unownedShards.isEmpty {
            lines.append("shards no instance holds: \(status.unownedShards.map(String.init).joined(separator: ","))")
        }
        if !status.backlog.isEmpty {
            lines.append("backlog by tenant:")
            for tenant in status.backlog {
                lines.append("  \(tenant.tenant.isEmpty ? "(no tenant)" : tenant.tenant): \(tenant.pending) pending, oldest \(String(format: "%.1f", tenant.oldestAgeSeconds)) s")
            }
        }
        if !status.retrying.isEmpty {
            lines.append("retrying:")
            for event in status.retrying {
                lines.append("  #\(event.id) \(event.tenant ?? "-"): \(event.attempts) attempts, next \(event.nextAttemptAt ?? "now"): \(event.lastError ?? "")")
            }
        }
        if !status.deadLetters.isEmpty {
            lines.append("dead:")
            for event in status.deadLetters {
                lines.append("  #\(event.id) \(event.tenant ?? "-") \(event.command ?? ""): \(event.reason ?? "no reason recorded")")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// One `--fail-if` condition: a measure of the status compared with a value.
struct StatusCondition {
    enum Measure: String, CaseIterable {
        case pending, dead, instances
        case oldestPending = "oldest-pending"
        case unownedShards = "unowned-shards"

        /// A heartbeat older than this means the instance is not counted as running.
        static let liveHeartbeat = 60.0

        /// The measure's value: seconds for `oldest-pending`, a count otherwise.
        func value(in status: OutboxStatus) -> Double {
            switch self {
            case .pending: Double(status.pending)
            case .dead: Double(status.dead)
            case .instances: Double(status.instances.filter { $0.heartbeatAgeSeconds < Self.liveHeartbeat }.count)
            case .oldestPending: status.oldestPendingAgeSeconds ?? 0
            case .unownedShards: Double(status.unownedShards.count)
            }
        }

        func describe(_ status: OutboxStatus) -> String {
            self == .oldestPending ? String(format: "%.0fs", value(in: status)) : String(Int(value(in: status)))
        }
    }

    enum Comparison: String, CaseIterable {
        // Two-character operators first, so `>=` is not read as `>` followed by `=5`.
        case atLeast = ">=", atMost = "<=", above = ">", below = "<", equal = "="

        func holds(_ left: Double, _ right: Double) -> Bool {
            switch self {
            case .atLeast: left >= right
            case .atMost: left <= right
            case .above: left > right
            case .below: left < right
            case .equal: left == right
            }
        }
    }

    let text: String
    let measure: Measure
    let comparison: Comparison
    let threshold: Double

    init(parsing text: String) throws {
        let condition = text.filter { !$0.isWhitespace }
        let measures = Measure.allCases.map(\.rawValue).joined(separator: ", ")
        guard let comparison = Comparison.allCases.first(where: { condition.contains($0.rawValue) }),
              let range = condition.range(of: comparison.rawValue)
        else {
            throw ValidationError("--fail-if \(text): expected <measure><operator><value> such as dead>0 (operators > >= < <= =)")
        }
        let name = String(condition[..<range.lowerBound])
        let value = String(condition[range.upperBound...])
        guard let measure = Measure(rawValue: name) else {
            throw ValidationError("--fail-if \(text): unknown measure \"\(name)\" (known: \(measures))")
        }
        let threshold: Double
        if measure == .oldestPending {
            guard let duration = parseDuration(value) else {
                throw ValidationError("--fail-if \(text): oldest-pending takes a duration with a unit (45s, 5m, 2h, 1d), got \"\(value)\"")
            }
            threshold = duration.seconds
        } else {
            guard let count = Int(value), count >= 0 else {
                throw ValidationError("--fail-if \(text): \(measure.rawValue) takes a whole number, got \"\(value)\"")
            }
            threshold = Double(count)
        }
        self.text = condition
        self.measure = measure
        self.comparison = comparison
        self.threshold = threshold
    }

    func holds(for status: OutboxStatus) -> Bool {
        comparison.holds(measure.value(in: status), threshold)
    }
}
