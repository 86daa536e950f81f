import Foundation
import Postgres

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Debian's PgBouncer (`/usr/sbin/pgbouncer`, package `pgbouncer`) in transaction pool mode on a
/// free loopback port, in front of one test database, as production setups put it in front of
/// the outbox: a session sees a different server connection from one transaction to the next,
/// and `LISTEN` through it hears nothing.
///
/// Its configuration lives in a fresh temporary directory; clients are trusted. Started by
/// ``start(database:admitting:)``; stop it with ``stop()`` (deinit stops it too).
public final class PgBouncer: Sendable {
    public static let executable = "/usr/sbin/pgbouncer"

    /// The URL of the test database through the pooler, as the database's own (superuser) user.
    public let url: String
    public let port: Int
    private let process: Process
    private let directory: URL

    /// Starts a pooler for `database` that admits its superuser and the users of `logins`
    /// (URLs of other logins of the same database, such as the relay's).
    public static func start(database: TestDatabase, admitting logins: [String] = []) async throws -> PgBouncer {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestEnvironmentError("\(executable) not found: install it with `scripts/install-deps.sh test`")
        }
        guard let target = URLComponents(string: database.url), let host = target.host, let serverPort = target.port else {
            throw TestEnvironmentError("cannot read host and port from \(database.url)")
        }
        let user = target.user ?? "postgres"
        let port = try freeLoopbackPort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pgbouncer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ini = directory.appendingPathComponent("pgbouncer.ini")
        let userlist = directory.appendingPathComponent("userlist.txt")
        try """
            [databases]
            \(database.name) = host=\(host) port=\(serverPort) dbname=\(database.name)

            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(userlist.path)
            pool_mode = transaction
            max_client_conn = 200
            default_pool_size = 10
            server_reset_query =
            ignore_startup_parameters = extra_float_digits,options
            logfile =
            pidfile =

            """.write(to: ini, atomically: true, encoding: .utf8)
        let users = [user] + logins.compactMap { URLComponents(string: $0)?.user }
        try users.map { "\"\($0)\" \"\"\n" }.joined().write(to: userlist, atomically: true, encoding: .utf8)

        var arguments = [ini.path]
        if getuid() == 0 {
            // PgBouncer refuses to run as root; it drops to `postgres`, which must read the files.
            arguments = ["-u", "postgres", ini.path]
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
            for file in [ini, userlist] {
                try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
            }
        }
        let log = directory.appendingPathComponent("pgbouncer.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()

        var components = target
        components.host = "127.0.0.1"
        components.port = port
        let bouncer = PgBouncer(url: components.string!, port: port, process: process, directory: directory)
        do {
            try await waitUntil("PgBouncer accepts connections on port \(port)", timeout: .seconds(15)) {
                guard process.isRunning else {
                    let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                    throw TestEnvironmentError("pgbouncer exited with \(process.terminationStatus): \(output)")
                }
                guard let connection = try? await PostgresConnection.connect(bouncer.url) else { return false }
                try await connection.query("SELECT 1")
                return true
            }
        } catch {
            bouncer.stop()
            throw error
        }
        return bouncer
    }

    private init(url: String, port: Int, process: Process, directory: URL) {
        self.url = url
        self.port = port
        self.process = process
        self.directory = directory
    }

    /// `login`, a URL of the same database as another user, through the pooler; the user must
    /// have been admitted at start.
    public func url(as login: String) -> String {
        var components = URLComponents(string: login)!
        components.host = "127.0.0.1"
        components.port = port
        return components.string!
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Stops PgBouncer (SIGINT: immediate shutdown) and waits for it to exit.
    public func stop() {
        guard process.isRunning else { return }
        _ = kill(process.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline {
            usleep(5_000)
        }
        if process.isRunning {
            _ = kill(process.processIdentifier, SIGKILL)
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for port 0).
public func freeLoopbackPort() throws -> Int {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard descriptor >= 0 else { throw TestEnvironmentError("socket() failed: errno \(errno)") }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 }
    }
    guard bound else { throw TestEnvironmentError("bind() failed: errno \(errno)") }
    let named = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) == 0 }
    }
    guard named else { throw TestEnvironmentError("getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
