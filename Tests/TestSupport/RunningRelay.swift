import Logging
public import OutboxBridgeCLI
public import Relay
import ServiceLifecycle

/// Runs the relay in-process, assembled exactly as `outbox-bridge run` assembles it, for the
/// duration of `body`; then shuts it down gracefully and waits for it to finish.
public func withRunningRelay<T: Sendable>(
    _ configuration: RelayConfiguration,
    retention: RetentionPolicy? = nil,
    _ body: () async throws -> T
) async throws -> T {
    let assembly = try await RelayApplication.assemble(
        configuration: configuration, shutdownTimeout: .seconds(10), retention: retention,
        logger: makeKafkaTestLogger("test.relay"))
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await assembly.serviceGroup.run() }
        do {
            let result = try await body()
            await assembly.serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            return result
        } catch {
            await assembly.serviceGroup.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}
