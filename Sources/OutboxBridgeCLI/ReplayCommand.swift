import ArgumentParser
import Foundation
import Operations
import Outbox

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Mark selected events pending again so the relay publishes them anew.",
        discussion: """
            Select by outbox id range, tenant, or time. Shows how many events that is and asks \
            before changing anything unless --yes is given. Where the events had landed is kept \
            in <schema>.delivery_history; their new positions are recorded when the relay \
            publishes them. Dead events in the selection are retried too.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "First outbox id (with --to-id).")
    var fromID: Int64?
    @Option(help: "Last outbox id (with --from-id).")
    var toID: Int64?
    @Option(help: "Every event of this tenant.")
    var tenant: String?
    @Option(help: "Events that occurred at or after this time, e.g. 2026-11-25T08:00:00Z.")
    var since: String?
    @Flag(help: "Do not ask for confirmation.")
    var yes = false

    func validate() throws {
        let chosen = [fromID != nil || toID != nil, tenant != nil, since != nil].filter { $0 }.count
        guard chosen == 1 else {
            throw ValidationError("choose exactly one of --from-id/--to-id, --tenant or --since")
        }
        if fromID != nil || toID != nil {
            guard let fromID, let toID, fromID <= toID else {
                throw ValidationError("--from-id and --to-id go together, with --from-id <= --to-id")
            }
        }
    }

    private var selection: ReplaySelection {
        if let fromID, let toID { return .ids(fromID...toID) }
        if let tenant { return .tenant(tenant) }
        return .since(since!)
    }

    func run() async throws {
        let operations = try await outbox.connect()
        let count = try await reportingFailures { try await operations.replayCount(selection) }
        print("\(count) delivered or dead events match \(selection)")
        guard count > 0 else { return }
        try confirm("Mark them pending so they are published again?", unless: yes, cancelled: "replay cancelled; nothing changed")
        let progress = ProgressReporter("replay: marked pending", total: count)
        let replayed = try await reportingFailures { try await progress.whileRunning { try await operations.replay(selection) } }
        progress.finish(done: replayed)
        print("\(replayed) events are pending again")
    }
}
