public import ArgumentParser
import Logging

/// The `outbox-bridge` command. It only parses arguments; each subcommand assembles the
/// services it needs, so tests can build the same services with test arguments.
public struct OutboxBridgeCommand: AsyncParsableCommand {
    /// The release, printed by `--version` so a bug report can say which build it is about;
    /// raised with each release.
    public static let version = "0.16.0"

    public static let configuration = CommandConfiguration(
        commandName: "outbox-bridge",
        abstract: "Relays PostgreSQL schema changes, captured in an outbox, to Kafka keyed by tenant.",
        version: "outbox-bridge \(version)",
        subcommands: [
            RunCommand.self,
            InstallCommand.self,
            UninstallCommand.self,
            CheckCommand.self,
            StatusCommand.self,
            AuditCommand.self,
            ReplayCommand.self,
            PruneCommand.self,
            SnapshotCommand.self,
            SDKSyncCommand.self,
            WarehouseSyncCommand.self,
            ExecCommand.self,
            SchemaStateCommand.self,
            DevBrokerCommand.self,
        ]
    )

    public init() {}

    /// Parses the process's arguments and runs the command, with every log line in the one
    /// format all commands share.
    public static func runProcess() async {
        ProcessLogging.use()
        await main()
    }
}
