import Foundation

extension PrivatePostgresCluster {
    /// A streaming standby of this cluster on a port of its own, built with
    /// `pg_basebackup --write-recovery-conf` and started: it replays what this cluster writes,
    /// answers read-only queries, and takes over after ``promote()``.
    public func startStandby() async throws -> PrivatePostgresCluster {
        try await Self.startingOnAFreePort(binaries: binaries) { [port] standby in
            try await standby.asOwner(
                binaries + "/pg_basebackup",
                ["--pgdata=\(standby.dataDirectory)", "--host=127.0.0.1", "--port=\(port)", "--username=postgres",
                 "--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast"])
        }
    }

    /// Turns a standby into a primary that accepts writes (`pg_ctl promote --wait`).
    public func promote() async throws {
        try await asOwner(binaries + "/pg_ctl", ["--pgdata=\(dataDirectory)", "--wait", "promote"])
    }
}
