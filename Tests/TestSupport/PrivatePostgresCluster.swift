import Foundation

/// A throwaway PostgreSQL 15 cluster of one test's own, set up like `scripts/dev-services.sh`
/// sets up the shared one (initdb as the `postgres` OS user when running as root, a free
/// loopback port, fsync off, every loopback connection trusted), for faults that would break
/// other tests on the shared cluster: a fast restart of the server.
public final class PrivatePostgresCluster: Sendable {
    /// The superuser URL of the cluster's `postgres` database.
    public let url: String
    public let port: Int
    let dataRoot: String
    let binaries: String

    var dataDirectory: String { dataRoot + "/data" }

    /// initdb's and starts a new cluster; ``stop()`` removes it. `binaries` runs another
    /// PostgreSQL major (``PostgresVersions``) instead of the dev services' one.
    public static func start(binaries: String? = nil) async throws -> PrivatePostgresCluster {
        let binaries = binaries ?? ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_PG_BIN"] ?? "/usr/lib/postgresql/15/bin"
        guard FileManager.default.isExecutableFile(atPath: binaries + "/initdb") else {
            throw TestEnvironmentError("PostgreSQL server binaries not found in \(binaries)")
        }
        return try await startingOnAFreePort(binaries: binaries) { cluster in
            try await cluster.asOwner(
                binaries + "/initdb",
                ["--pgdata=\(cluster.dataDirectory)", "--username=postgres", "--auth=trust", "--encoding=UTF8",
                 "--locale=C.UTF-8"])
        }
    }

    /// Builds a cluster with `prepare`, then starts its server; when the port turns out taken
    /// after all (another test's server bound it between the check and the start), starts over
    /// on another port, up to three times.
    static func startingOnAFreePort(
        binaries: String, prepare: (PrivatePostgresCluster) async throws -> Void
    ) async throws -> PrivatePostgresCluster {
        for attempt in 1...3 {
            let cluster = try await PrivatePostgresCluster(binaries: binaries)
            try await prepare(cluster)
            do {
                try await cluster.startServer()
                return cluster
            } catch {
                let log = (try? String(contentsOfFile: cluster.dataRoot + "/server.log", encoding: .utf8)) ?? ""
                await cluster.stop()
                guard attempt < 3, log.contains("could not bind") || log.contains("already in use") else {
                    throw TestEnvironmentError("\(error)\nserver log:\n\(log.suffix(2000))")
                }
            }
        }
        throw TestEnvironmentError("no free port in three attempts")
    }

    /// A cluster with a new data folder and port and nothing in them yet.
    convenience init(binaries: String) async throws {
        // Below the test run's own folder when scripts/test.sh gives one, which stops every
        // server left there when the run ends, however the test that started it ended.
        let runDirectory = ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_TEST_RUN_DIR"] ?? "/tmp"
        let dataRoot = "\(runDirectory)/outbox-bridge-private-pg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(
            atPath: dataRoot, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        if getuid() == 0 {
            try await Self.checked("/bin/chown", ["postgres:postgres", dataRoot])
        }
        self.init(dataRoot: dataRoot, binaries: binaries, port: try await Self.freePort())
    }

    /// Starts the server on the cluster's data folder and port.
    func startServer() async throws {
        let options = "-c listen_addresses=127.0.0.1 -c port=\(port) -c unix_socket_directories=\(dataRoot) "
            + "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        try await asOwner(
            binaries + "/pg_ctl",
            ["--pgdata=\(dataDirectory)", "--log=\(dataRoot)/server.log", "--wait", "--options=\(options)", "start"])
    }

    private init(dataRoot: String, binaries: String, port: Int) {
        self.dataRoot = dataRoot
        self.binaries = binaries
        self.port = port
        self.url = "postgresql://postgres@127.0.0.1:\(port)/postgres"
    }

    /// `pg_ctl restart -m fast`: every session is ended, the server shuts down cleanly and
    /// comes back on the same port with the same settings.
    public func restartFast() async throws {
        try await asOwner(
            binaries + "/pg_ctl", ["--pgdata=\(dataDirectory)", "--log=\(dataRoot)/server.log", "--mode=fast", "--wait", "restart"])
    }

    /// Stops the server at once and deletes its files.
    public func stop() async {
        _ = try? await asOwner(binaries + "/pg_ctl", ["--pgdata=\(dataDirectory)", "--mode=immediate", "--wait", "stop"])
        try? FileManager.default.removeItem(atPath: dataRoot)
    }

    /// Runs a server binary as the cluster's owner. Through Python's `subprocess` with
    /// `close_fds`: the server pg_ctl leaves running must not inherit a descriptor of this test
    /// process, or waiting for pg_ctl to finish never ends.
    func asOwner(_ executable: String, _ arguments: [String]) async throws {
        let command = (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [executable] + arguments
        let script = """
            import subprocess, sys
            done = subprocess.run(sys.argv[1:], close_fds=True, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            sys.stderr.write(done.stdout.decode(errors="replace"))
            sys.exit(done.returncode)
            """
        try await Self.checked("/usr/bin/python3", ["-c", script] + command)
    }

    private static func checked(_ executable: String, _ arguments: [String]) async throws {
        let result = try await runTool(executable, arguments)
        guard result.status == 0 else {
            throw TestEnvironmentError(
                "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.errorOutput)\(result.output)")
        }
    }

    /// A port nothing listens on, below the kernel's ephemeral range: a port the kernel hands
    /// out can be the local end of one of the many client connections the tests open by the
    /// time the server binds it (seen once: `pg_ctl: could not start server`).
    private static func freePort() async throws -> Int {
        let script = """
            import random, socket
            low = int(open('/proc/sys/net/ipv4/ip_local_port_range').read().split()[0])
            for _ in range(200):
                port = random.randrange(10000, low)
                s = socket.socket()
                try:
                    s.bind(('127.0.0.1', port))
                except OSError:
                    continue
                finally:
                    s.close()
                print(port)
                break
            """
        let result = try await runTool("/usr/bin/python3", ["-c", script])
        guard result.status == 0, let port = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestEnvironmentError("cannot find a free port: \(result.errorOutput)")
        }
        return port
    }
}
