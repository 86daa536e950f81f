import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One run of an external command as the leader of a process group of its own, so that a
/// timeout (or a shutdown that abandons it) kills everything it started, not only the shell on
/// top: `sh -c 'slow | tee'` leaves no `slow` behind.
///
/// Spawned with `posix_spawnp` and `POSIX_SPAWN_SETPGROUP` (Foundation's `Process` cannot put
/// the child in a new group). Standard input is a file holding `input`, so a command that never
/// reads it cannot block us on a full pipe; standard error goes to a file whose tail is kept for
/// the dead letter; standard output is the consumer's own; no other descriptor is passed on. Both files are unlinked at once and
/// live only as open descriptors. The child gets an empty signal mask and default dispositions,
/// whatever the consumer blocked for its own shutdown handling.
///
/// `waitpid` blocks, so it runs on a thread of its own, never on Swift's cooperative pool.
struct ProcessGroupCommand: Sendable {
    /// How a run ended.
    enum Termination: Sendable, Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        /// Still running at the timeout; its process group was killed.
        case timedOut(Duration)

        var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .signalled(let signal): "killed by signal \(signal)"
            case .timedOut(let limit): "still running after \(limit), process group killed"
            }
        }
    }

    struct Outcome: Sendable {
        var termination: Termination
        /// The last bytes the command wrote to standard error, as text.
        var standardErrorTail: String
    }

    /// Why the command could not be started at all.
    struct LaunchFailure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// `arguments[0]` is looked up in `PATH`.
    var arguments: [String]
    /// Added to the consumer's environment.
    var environment: [String: String]
    var timeout: Duration
    var standardErrorTailBytes: Int

    func run(input: [UInt8]) async throws(LaunchFailure) -> Outcome {
        let inputFile = try Self.unlinkedFile(holding: input)
        defer { close(inputFile) }
        let errorFile = try Self.unlinkedFile(holding: [])
        defer { close(errorFile) }
        let pid = try spawn(standardInput: inputFile, standardError: errorFile)
        let termination = await wait(for: pid)
        // Whatever the leader left running in its group goes with it: the next event's command
        // must not overlap this one's leftovers.
        kill(-pid, SIGKILL)
        return Outcome(termination: termination, standardErrorTail: Self.tail(of: errorFile, bytes: standardErrorTailBytes))
    }

    private func spawn(standardInput: Int32, standardError: Int32) throws(LaunchFailure) -> pid_t {
        guard let executable = arguments.first, !executable.isEmpty else {
            throw LaunchFailure(description: "no command given")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, standardInput, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, standardError, STDERR_FILENO)
        // Nothing else of ours: not the Kafka sockets, and not descriptors a parent watches to
        // learn when we exit (Foundation's `Process` does), which a command that outlives us
        // would otherwise hold open.
        // (`posix_spawn_file_actions_addclosefrom_np` is not visible to Swift, so the open
        // descriptors are listed; closing one that went away meanwhile is not an error.)
        for descriptor in Self.openDescriptors() where descriptor > STDERR_FILENO {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
            .map { "\($0.key)=\($0.value)" }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = variables.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let status = posix_spawnp(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw LaunchFailure(description: "cannot start \(executable): \(String(cString: strerror(status)))")
        }
        return pid
    }

    /// Waits for the leader to exit, killing its group at the timeout or when the waiting task
    /// is cancelled (a shutdown that gives up on the current event).
    private func wait(for pid: pid_t) async -> Termination {
        let reaped = ReapedStatus()
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            reaped.finish(status)
        }
        waiter.name = "exec-wait-\(pid)"
        waiter.start()
        let timedOut = Mutex(false)
        let timer = Task { [timeout] in
            try await Task.sleep(for: timeout)
            timedOut.withLock { $0 = true }
            kill(-pid, SIGKILL)
        }
        let status = await withTaskCancellationHandler {
            await reaped.value()
        } onCancel: {
            kill(-pid, SIGKILL)
        }
        timer.cancel()
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
        let signal = status & 0x7f
        // A leader that exited on its own just as the timer fired still counts as exited.
        if signal == SIGKILL, timedOut.withLock({ $0 }) { return .timedOut(timeout) }
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signalled(signal)
    }

    private static func openDescriptors() -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))
            ?? (try? FileManager.default.contentsOfDirectory(atPath: "/dev/fd")) ?? []
        return entries.compactMap { Int32($0) }
    }

    private static func unlinkedFile(holding bytes: [UInt8]) throws(LaunchFailure) -> Int32 {
        var template = Array((FileManager.default.temporaryDirectory.path + "/outbox-exec-XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            throw LaunchFailure(description: "cannot create a temporary file: \(String(cString: strerror(errno)))")
        }
        // Only the command being spawned gets it, through dup2; not every later child.
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            guard count > 0 || (count == -1 && errno == EINTR) else {
                close(descriptor)
                throw LaunchFailure(description: "cannot write the event to a temporary file: \(String(cString: strerror(errno)))")
            }
            written += max(count, 0)
        }
        lseek(descriptor, 0, SEEK_SET)
        return descriptor
    }

    private static func tail(of descriptor: Int32, bytes limit: Int) -> String {
        let size = Int(lseek(descriptor, 0, SEEK_END))
        guard size > 0, limit > 0 else { return "" }
        let start = max(0, size - limit)
        var buffer = [UInt8](repeating: 0, count: size - start)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, $0.count, off_t(start)) }
        return String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
    }
}

/// The raw `waitpid` status, handed from the waiting thread to one async waiter.
private final class ReapedStatus: Sendable {
    private struct State {
        var status: Int32?
        var waiter: CheckedContinuation<Int32, Never>?
    }

    private let state = Mutex(State())

    func finish(_ status: Int32) {
        let waiter = state.withLock { state in
            state.status = status
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: status)
    }

    func value() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = state.withLock { state -> Int32? in
                if state.status == nil { state.waiter = continuation }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }
}
