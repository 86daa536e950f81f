import ArgumentParser

/// Subcommands that later issues deliver. Each says so and exits non-zero rather than
/// pretending to work.
protocol PlannedCommand: AsyncParsableCommand {}

extension PlannedCommand {
    func run() async throws {
        throw ValidationError("'\(Self._commandName)' is not implemented yet")
    }
}

struct StatusCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the outbox backlog and delivery positions (not implemented yet).")
}

struct AuditCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Prove where each processed event landed in Kafka (not implemented yet).")
}

struct ReplayCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Mark selected events pending again (not implemented yet).")
}

struct PruneCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Delete processed events older than an age (not implemented yet).")
}

struct WarehouseSyncCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "warehouse-sync", abstract: "Mirror tenant table shapes into a warehouse (not implemented yet).")
}
