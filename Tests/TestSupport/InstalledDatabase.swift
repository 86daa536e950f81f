import Logging
import Outbox

extension TestDatabase {
    /// A fresh database with the capture installed in schema `platform` by the real installer,
    /// the way `outbox-bridge install` does it.
    public static func createInstalled(_ label: String, clusterURL: String? = nil) async throws -> TestDatabase {
        let database = try await create(label, clusterURL: clusterURL)
        try await OutboxInstaller(connection: try await database.connect(), schema: "platform", logger: Logger(label: "test.install"))
            .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
        return database
    }
}
