import Foundation
import Postgres

/// Instructions per event where `perf stat -e instructions` has no counter (most virtual
/// machines, this project's among them): the contestant runs under valgrind's callgrind, which
/// counts every instruction it executes whatever the hardware offers, and the benchmark zeroes
/// and dumps the count around each phase with `callgrind_control` (valgrind's gdbserver), so
/// start-up is never counted.
///
/// Under callgrind a process runs 30-100 times slower, but instruction counts do not depend on
/// speed. What does depend on time is the work a relay does while nothing happens (its poll
/// tick, lease renewal, the producer's timers): that is measured first as instructions per
/// second with no events, and each phase's figure is net of it (background rate × the phase's
/// wall time), so the per-event figure is the cost of the events alone. The per-event cost at a
/// steady rate r is then `net + idle per second / r`.
///
/// Phases, each on one process that has already relayed a warm-up event:
/// - idle: nothing written for a few seconds;
/// - single events: one `emit()` at a time, the next once the row is marked;
/// - drain: a committed backlog written in one statement, until every row is marked.
struct CallgrindWorkload {
    /// How long the idle phase counts the background work.
    static let idleSeconds = 3

    /// What one contestant's phases counted.
    struct Result {
        /// Instructions per second with nothing to relay.
        let idlePerSecond: Double
        /// Per event, net of the idle rate.
        let singleEvent: Double
        let drainEvent: Double
    }

    let environment: BenchmarkEnvironment
    let singleEvents: Int
    let drainEvents: Int

    /// Whether callgrind can be used here: valgrind, callgrind_control and a C compiler (for
    /// the sigsuspend shim) are installed.
    static var isAvailable: Bool {
        ["/usr/bin/valgrind", "/usr/bin/callgrind_control", "/usr/bin/cc", "/usr/bin/objcopy"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Whether `perf stat` counts instructions on this machine (then perf's figures are in the
    /// tables already and callgrind is not needed).
    static func perfCountsInstructions() -> Bool {
        let probe = StableCounters(pids: [getpid()])
        usleep(10_000)
        return probe.stop().instructions != nil
    }

    func measure(_ contestant: Contestant) async throws -> Result {
        try await environment.connection.query("TRUNCATE platform.schema_changes")
        let outputs = FileManager.default.temporaryDirectory.appendingPathComponent("relay-benchmark-callgrind-\(UUID())")
        try FileManager.default.createDirectory(at: outputs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outputs) }
        let valgrind = ["/usr/bin/env", "LD_PRELOAD=\(try Self.sigsuspendShim(in: outputs))",
                        "/usr/bin/valgrind", "-q", "--tool=callgrind", "--cache-sim=no", "--branch-sim=no",
                        "--callgrind-out-file=\(outputs.path)/callgrind.out.%p"]
        let commands = try contestant.commands.map { command in
            valgrind + [try Self.withoutDebugInfo(command[0], in: outputs)] + command.dropFirst()
        }
        let relay = try Contestant(name: contestant.name, commands: commands, marksAfterAck: contestant.marksAfterAck).start()
        defer { relay.stop() }
        guard let pid = relay.pids.first else { throw BenchmarkFailure("no process started for \(contestant.name)") }
        // Start-up under callgrind takes many seconds; the warm-up event shows it is relaying.
        // The wait is bounded: a process valgrind fails on may hang rather than exit.
        try await emit(count: 1)
        try await waitUntilMarked(relay, timeout: .seconds(120))

        let idle = try await phase(pid, outputs) { try await Task.sleep(for: .seconds(Self.idleSeconds)) }
        let idlePerSecond = idle.instructions / idle.seconds
        let single = try await phase(pid, outputs) {
            for _ in 0..<singleEvents {
                try await emit(count: 1)
                try await waitUntilMarked(relay, timeout: .seconds(60))
            }
        }
        let drain = try await phase(pid, outputs) {
            try await emit(count: drainEvents)
            try await waitUntilMarked(relay, timeout: .seconds(600))
        }
        func net(_ counted: (instructions: Double, seconds: Double), events: Int) -> Double {
            (counted.instructions - idlePerSecond * counted.seconds) / Double(max(events, 1))
        }
        return Result(idlePerSecond: idlePerSecond, singleEvent: net(single, events: singleEvents),
                      drainEvent: net(drain, events: drainEvents))
    }

    /// A preloaded `sigsuspend` that passes the kernel a writable copy of its mask, built with
    /// the system's C compiler: valgrind 3.19 (Debian 12) writes into the mask of
    /// `rt_sigsuspend`, and libdispatch's `dispatch_main`, which Swift's async main runs on,
    /// passes a `static const` one, so valgrind dies of SIGSEGV in any Swift 6 program
    /// ("the 'impossible' happened") before it relays anything.
    private static func sigsuspendShim(in directory: URL) throws -> String {
        let source = directory.appendingPathComponent("sigsuspend-shim.c")
        let library = directory.appendingPathComponent("sigsuspend-shim.so").path
        try """
            #define _GNU_SOURCE
            #include <signal.h>
            #include <unistd.h>
            #include <sys/syscall.h>
            int sigsuspend(const sigset_t *mask) {
                sigset_t copy = *mask;
                return (int)syscall(SYS_rt_sigsuspend, &copy, 8);
            }
            """.write(to: source, atomically: true, encoding: .utf8)
        try runTool("/usr/bin/cc", ["-shared", "-fPIC", "-O2", "-o", library, source.path],
                    failure: "cc could not build the sigsuspend shim for valgrind")
        return library
    }

    /// A copy of `executable` without its debug information when it is not a system one:
    /// valgrind 3.19 cannot read the DWARF 5 that Swift 6 writes ("unhandled dwarf2 abbrev form
    /// code 0x25") and gives up on the process. Instruction counts do not depend on it. System
    /// executables (/usr) ship stripped, and Python finds its library from its own path.
    private static func withoutDebugInfo(_ executable: String, in directory: URL) throws -> String {
        guard !executable.hasPrefix("/usr/") else { return executable }
        let copy = directory.appendingPathComponent(URL(fileURLWithPath: executable).lastPathComponent + ".stripped").path
        try runTool("/usr/bin/objcopy", ["--strip-debug", executable, copy],
                    failure: "objcopy --strip-debug \(executable) failed")
        return copy
    }

    /// Zeroes callgrind's counters, runs `body`, dumps them, and returns what they counted.
    private func phase(_ pid: Int32, _ outputs: URL, _ body: () async throws -> Void)
        async throws -> (instructions: Double, seconds: Double) {
        try Self.control("-z", pid)
        let clock = ContinuousClock()
        let started = clock.now
        try await body()
        try Self.control("-d", pid)
        let seconds = started.duration(to: clock.now).seconds
        return (Double(try Self.latestDumpTotal(in: outputs)), seconds)
    }

    /// `callgrind_control -z|-d PID`: zero or dump the counters of every thread of the process.
    private static func control(_ command: String, _ pid: Int32) throws {
        try runTool("/usr/bin/callgrind_control", [command, String(pid)],
                    failure: "callgrind_control \(command) \(pid) failed")
    }

    /// Runs one of the tools the workload needs to completion, its output discarded (its errors
    /// still reach stderr), and throws `failure` with its exit status when it fails.
    private static func runTool(_ path: String, _ arguments: [String], failure: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchmarkFailure("\(failure) (exit status \(process.terminationStatus))")
        }
    }

    /// The instruction total of the newest dump: callgrind names its dumps `callgrind.out.PID.1`,
    /// `.2`, …, and each holds a `totals:` line (instructions executed since the last zeroing).
    private static func latestDumpTotal(in outputs: URL) throws -> Int {
        let numbered = try FileManager.default.contentsOfDirectory(atPath: outputs.path).compactMap { name in
            let parts = name.split(separator: ".")
            return parts.count == 4 ? Int(parts[3]).map { (name: name, part: $0) } : nil
        }
        guard let newest = numbered.max(by: { $0.part < $1.part })?.name
        else { throw BenchmarkFailure("callgrind wrote no dump in \(outputs.path)") }
        let text = try String(contentsOf: outputs.appendingPathComponent(newest), encoding: .utf8)
        guard let line = text.split(separator: "\n").last(where: { $0.hasPrefix("totals:") || $0.hasPrefix("summary:") }),
              let total = Int(line.split(separator: " ").last ?? "")
        else { throw BenchmarkFailure("no totals in callgrind's dump \(newest)") }
        return total
    }

    private func emit(count: Int) async throws {
        try await environment.connection.query(
            """
            SELECT platform.emit('tenant' || (n % 100), 'bench.event', jsonb_build_object('n', n, 'padding', repeat('x', 200)))
            FROM generate_series(1, $1::int) AS n
            """, [count])
    }

    private func waitUntilMarked(_ relay: MeasuredProcess, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await environment.anyPending() {
            guard relay.isRunning, ContinuousClock.now < deadline else {
                throw BenchmarkFailure("a relay under callgrind did not mark its events within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
