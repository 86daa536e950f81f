import ArgumentParser
import Foundation
import Operations
import Outbox

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete processed events older than an age, in small batches; dead events are kept.",
        discussion: """
            The age means what retention.keepProcessed means to the running bridge, except that \
            0 (keep everything there) is refused. Shows how many events that is and asks before \
            deleting unless --yes is given; --dry-run only shows the count.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "Age of the processed events to delete: a whole number with s, m, h or d (e.g. 7d, 12h, 30m, 45s).",
            transform: { text in
                guard let age = parseDuration(text) else {
                    throw ValidationError("--older-than expects a number with a unit (7d, 12h, 30m or 45s), got \(text)")
                }
                return age
            })
    var olderThan: Duration = .seconds(7 * 86_400)
    @Option(help: "Rows deleted per statement.")
    var batchSize = 1000
    @Flag(help: "Do not ask for confirmation.")
    var yes = false
    @Flag(help: "Only print how many events would be deleted.")
    var dryRun = false

    func validate() throws {
        guard olderThan > .zero else {
            throw ValidationError("--older-than 0 would delete every processed event (retention.keepProcessed 0 means keep everything); give an age such as 7d")
        }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() async throws {
        let operations = try await outbox.connect()
        let age = formatDuration(olderThan)
        let count = try await reportingFailures { try await operations.pruneCount(olderThan: olderThan) }
        print("\(count) processed events are older than \(age)")
        guard count > 0, !dryRun else { return }
        try confirm("Delete them?", unless: yes, cancelled: "prune cancelled; nothing deleted")
        let progress = ProgressReporter("prune: deleted", total: count)
        let deleted = try await reportingFailures {
            try await operations.prune(olderThan: olderThan, batchSize: batchSize) { progress.advance(to: $0) }
        }
        progress.finish(done: deleted)
        print("deleted \(deleted) processed events older than \(age)")
    }
}

/// `7d`, `12h`, `30m` or `45s`: a whole number and a unit, as `prune --older-than` and
/// `retention.keepProcessed` both take it. A bare number is refused, so nobody deletes a week's
/// worth thinking in days while the bridge counts seconds.
func parseDuration(_ text: String) -> Duration? {
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    guard let unit = trimmed.last.flatMap({ units[$0] }), let value = Int64(trimmed.dropLast()), value >= 0,
          value <= Int64.max / unit
    else { return nil }
    return .seconds(value * unit)
}

/// The largest whole unit that says `duration` exactly: 604800 s is `7d`.
func formatDuration(_ duration: Duration) -> String {
    let seconds = duration.components.seconds
    for (unit, size) in [("d", Int64(86_400)), ("h", 3600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
        return "\(seconds / size)\(unit)"
    }
    return "\(seconds)s"
}
