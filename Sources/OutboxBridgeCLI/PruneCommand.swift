import ArgumentParser
import Operations

struct PruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete processed events older than an age, in small batches; dead events are kept.")

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "Age of the processed events to delete: a number with s, m, h or d (e.g. 7d, 12h).",
            transform: { text in
                guard let age = parseAge(text) else { throw ValidationError("--older-than expects e.g. 7d, 12h, 30m or 90s, got \(text)") }
                return age
            })
    var olderThan: Duration = .seconds(7 * 86_400)
    @Option(help: "Rows deleted per statement.")
    var batchSize = 1000

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive") }
    }

    func run() async throws {
        let operations = try await outbox.connect()
        let deleted = try await reportingFailures { try await operations.prune(olderThan: olderThan, batchSize: batchSize) }
        print("deleted \(deleted) processed events older than \(olderThan)")
    }
}

/// `7d`, `12h`, `30m`, `90s` (or a bare number of seconds).
func parseAge(_ text: String) -> Duration? {
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    let (number, unit) = text.last.flatMap { units[$0] }.map { (text.dropLast(), $0) } ?? (Substring(text), 1)
    guard let value = Int64(number), value >= 0 else { return nil }
    return .seconds(value * unit)
}
