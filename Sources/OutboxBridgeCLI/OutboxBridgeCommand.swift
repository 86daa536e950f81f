public import ArgumentParser

/// The `outbox-bridge` command. It only parses arguments; each subcommand assembles the
/// services it needs, so tests can build the same services with test arguments.
public struct OutboxBridgeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "outbox-bridge",
        abstract: "Relays PostgreSQL schema changes, captured in an outbox, to Kafka keyed by tenant.",
        subcommands: [
            RunCommand.self,
            InstallCommand.self,
            CheckCommand.self,
            StatusCommand.self,
            AuditCommand.self,
            ReplayCommand.self,
            PruneCommand.self,
            SDKSyncCommand.self,
            WarehouseSyncCommand.self,
            ExecCommand.self,
            SchemaStateCommand.self,
            DevBrokerCommand.self,
        ]
    )

    public init() {}
}
