/// Waits until `condition` holds, checking again as soon as each check returns, for state that
/// offers no event to await (a server session ending, a row appearing). Fails after `timeout`.
public func waitUntil(
    _ description: String,
    timeout: Duration = .seconds(30),
    condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while try await !condition() {
        guard clock.now < deadline else {
            throw TestEnvironmentError("timed out after \(timeout) waiting until \(description)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}
