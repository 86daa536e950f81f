import ArgumentParser

/// Subcommands that later issues deliver. Each says so and exits non-zero rather than
/// pretending to work.
protocol PlannedCommand: AsyncParsableCommand {}

extension PlannedCommand {
    func run() async throws {
        throw ValidationError("'\(Self._commandName)' is not implemented yet")
    }
}





struct SDKSyncCommand: PlannedCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdk-sync", abstract: "Regenerate per-tenant TypeScript SDKs (not implemented yet).")
}
