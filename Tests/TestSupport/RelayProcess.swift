public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The real `outbox-bridge` executable running as a child process, so tests can do to it what
/// happens in production: `kill -9` it mid-batch, send it SIGTERM, run two of them at once, or
/// give it bad arguments and read what it prints.
///
/// Its standard error and output go to files in a private temporary directory, so a chatty
/// process can never stall on a full pipe and a test can read them at any time. The process is
/// killed with SIGKILL when this object goes away (or on ``stop()``) if it is still running, so
/// no test leaves a relay behind.
public final class RelayProcess: Sendable {
    /// The process id, for `kill` and for log messages.
    public let pid: Int32
    /// Where the child's standard error (its log) is written.
    public let stderrURL: URL
    /// Where the child's standard output is written.
    public let stdoutURL: URL
    private let directory: URL
    private let state: ExitState

    private struct State {
        var exitStatus: Int32?
        var waiters: [UUID: CheckedContinuation<Int32?, Never>] = [:]
    }

    /// Shared by this object and the termination handler, which may outlive it.
    private final class ExitState: Sendable {
        let mutex = Mutex(State())

        func withLock<R>(_ body: (inout State) -> R) -> R {
            mutex.withLock { body(&$0) }
        }
    }

    /// The environment variables the relay reads its settings from; a child never inherits
    /// these from the test run, so only what the test passes applies.
    private static let relaySettingPrefixes =
        ["DATABASE_", "LISTEN_", "KAFKA_", "RELAY_", "OUTBOX_", "LOG_", "SHUTDOWN_", "HTTP_", "RETENTION_", "DRIFT_"]

    /// Starts `outbox-bridge` with `arguments` (e.g. `["run", "--database-url", …]`).
    /// `environment` is added to the test process's environment, minus any relay settings it has.
    public static func launch(
        _ arguments: [String], environment: [String: String] = [:], label: String = "relay"
    ) throws -> RelayProcess {
        let executable = try executableURL()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("relay-process-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stderrURL = directory.appendingPathComponent("stderr.log")
        let stdoutURL = directory.appendingPathComponent("stdout.log")
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)

        var childEnvironment = ProcessInfo.processInfo.environment.filter { name, _ in
            !relaySettingPrefixes.contains { name.hasPrefix($0) } || name == TestDatabase.clusterURLVariable
        }
        // Several relays run at once in the tests: each serves /metrics on a free port of its
        // own (logged at start) unless the test names one.
        childEnvironment["HTTP_PORT"] = "0"
        childEnvironment["HTTP_HOST"] = "127.0.0.1"
        childEnvironment.merge(environment) { _, new in new }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = childEnvironment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)

        let state = ExitState()
        process.terminationHandler = { finished in
            // Like a shell: a signal-killed process reports 128 + the signal number.
            let status = finished.terminationReason == .uncaughtSignal
                ? 128 + finished.terminationStatus : finished.terminationStatus
            let waiters = state.withLock { state in
                state.exitStatus = status
                defer { state.waiters = [:] }
                return state.waiters.values
            }
            for waiter in waiters { waiter.resume(returning: status) }
        }
        try process.run()
        return RelayProcess(
            pid: process.processIdentifier, directory: directory, stderrURL: stderrURL, stdoutURL: stdoutURL,
            state: state)
    }

    private init(pid: Int32, directory: URL, stderrURL: URL, stdoutURL: URL, state: ExitState) {
        self.pid = pid
        self.directory = directory
        self.stderrURL = stderrURL
        self.stdoutURL = stdoutURL
        self.state = state
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The `outbox-bridge` executable SwiftPM built next to the test bundle.
    public static func executableURL() throws -> URL {
        var candidates: [URL] = []
        let selfExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        candidates.append(selfExecutable.deletingLastPathComponent())
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let first = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        // On macOS the test bundle is `….xctest/Contents/MacOS/…`: walk up to the products.
        var walking = Bundle.main.bundleURL
        for _ in 0..<4 {
            walking = walking.deletingLastPathComponent()
            candidates.append(walking)
        }
        for directory in candidates {
            let url = directory.appendingPathComponent("outbox-bridge")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: url.path) {
                return url
            }
        }
        throw TestEnvironmentError(
            "the outbox-bridge executable is not next to the test bundle (looked in \(candidates.map(\.path))); "
                + "build it with `swift build --build-tests`")
    }

    /// Whether the process has not exited yet.
    public var isRunning: Bool {
        state.withLock { $0.exitStatus == nil }
    }

    /// The exit status once it has exited (128 + signal when killed by a signal).
    public var exitStatus: Int32? {
        state.withLock { $0.exitStatus }
    }

    /// Sends `signal` (SIGTERM, SIGKILL, …) to the process if it is still running.
    public func kill(_ signal: Int32) {
        guard isRunning else { return }
        #if canImport(Glibc)
        _ = Glibc.kill(pid, signal)
        #else
        _ = Darwin.kill(pid, signal)
        #endif
    }

    /// Waits for the process to exit and returns its status; throws if it is still running after
    /// `timeout` (and leaves it running, for the caller to inspect or kill).
    public func waitForExit(timeout: Duration) async throws -> Int32 {
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await self.exit() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        guard let status else {
            throw TestEnvironmentError(
                "outbox-bridge (pid \(pid)) still running after \(timeout); stderr:\n\(standardError.suffix(4000))")
        }
        return status
    }

    /// The exit status, once the process exits; nil if the waiting task is cancelled first.
    private func exit() async -> Int32? {
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
                let status = state.withLock { state -> Int32?? in
                    if let status = state.exitStatus { return .some(status) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let status { continuation.resume(returning: status) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// Kills the process with SIGKILL if it is still running and waits for it to be reaped.
    public func stop() {
        guard isRunning else { return }
        kill(SIGKILL)
        // The termination handler runs once the child is reaped; wait briefly for it so the
        // database sessions it held are gone before the test drops its database.
        let deadline = Date().addingTimeInterval(5)
        while isRunning, Date() < deadline {
            usleep(5_000)
        }
    }

    /// Everything written to standard error so far.
    public var standardError: String {
        (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
    }

    /// Everything written to standard output so far.
    public var standardOutput: String {
        (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? ""
    }

    /// Standard error split into non-empty lines.
    public var standardErrorLines: [String] {
        standardError.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// Waits until standard error contains `text` (a log line the relay writes at a state
    /// change); fails early if the process exits first.
    public func waitForStandardError(containing text: String, timeout: Duration = .seconds(30)) async throws {
        try await waitUntil("outbox-bridge (pid \(pid)) logs \"\(text)\"", timeout: timeout) {
            if standardError.contains(text) { return true }
            if let status = exitStatus {
                throw TestEnvironmentError(
                    "outbox-bridge exited with \(status) before logging \"\(text)\"; stderr:\n\(standardError.suffix(4000))")
            }
            return false
        }
    }
}
