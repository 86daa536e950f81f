import Foundation

/// A contestant's running processes (a relay, or several instances of it), with their CPU time
/// and memory read from /proc and summed.
final class MeasuredProcess {
    private let processes: [Process]

    /// CPUs the contestants run on (`taskset` list syntax), from `RELAY_BENCHMARK_CONTESTANT_CPUS`:
    /// bench-relay.sh pins the harness to the other ones, so its consumer and polling loops do
    /// not compete with the contestant for a core.
    private static let contestantCPUs = ProcessInfo.processInfo.environment["RELAY_BENCHMARK_CONTESTANT_CPUS"]

    init(executable: String, arguments: [String]) throws {
        let process = Process()
        if let cpus = Self.contestantCPUs {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", cpus, executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        processes = [process]
    }

    private init(processes: [Process]) {
        self.processes = processes
    }

    /// Several contestants measured as one (their processes keep running until `stop`).
    static func group(_ members: [MeasuredProcess]) -> MeasuredProcess {
        MeasuredProcess(processes: members.flatMap(\.processes))
    }

    private static func status(_ pid: Int32, _ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Int(line.split(whereSeparator: \.isWhitespace)[1]) ?? 0
    }

    /// Peak resident memory (VmHWM), summed over the processes.
    var peakResidentKiB: Int { processes.reduce(0) { $0 + Self.status($1.processIdentifier, "VmHWM") } }

    /// Resident anonymous memory now (RssAnon: heap, malloc arenas, stacks), summed; the rest
    /// of RSS is mapped files, mostly the code of the Swift runtime, Foundation and the C
    /// libraries.
    var residentAnonymousKiB: Int { processes.reduce(0) { $0 + Self.status($1.processIdentifier, "RssAnon") } }

    /// User + system CPU so far, summed over the processes.
    var cpuSeconds: Double {
        processes.reduce(0) { total, process in
            guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)
            else { return total }
            let fields = text[text.lastIndex(of: ")")!...].split(separator: " ")
            return total + Double((Int(fields[12]) ?? 0) + (Int(fields[13]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
    }

    var pids: [Int32] { processes.map(\.processIdentifier) }

    var isRunning: Bool { processes.allSatisfy(\.isRunning) }

    /// SIGTERM, then SIGKILL for any process still running after 10 seconds. Stopping twice is
    /// harmless.
    func stop() {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(10)
        while processes.contains(where: \.isRunning), ContinuousClock.now < deadline { usleep(10_000) }
        for process in processes where process.isRunning {
            print("pid \(process.processIdentifier) ignored SIGTERM; killing it")
            kill(process.processIdentifier, SIGKILL)
        }
        while processes.contains(where: \.isRunning) { usleep(10_000) }
    }
}
