import Foundation

/// Context switches and instructions of a contestant's processes over one measurement, counted
/// by `perf stat` attached to them: unlike CPU seconds these barely move with the noise of a
/// shared machine, so they show what one step of a change is worth. Where the kernel or the
/// virtual machine offers no counter (instructions, on many VMs), that figure is `nil`.
final class StableCounters {
    struct Counts {
        var contextSwitches: Int?
        var instructions: Int?

        /// "12.3 context switches, 45,678 instructions per event", with "n/a" for a figure
        /// perf could not count; where perf counted no instructions, `callgrind` (the same
        /// contestant's instructions per event from ``CallgrindWorkload``) stands in, marked.
        func perEvent(_ events: Int, callgrind: Double? = nil) -> String {
            func per(_ count: Int?, digits: Int) -> String? {
                count.map { String(format: "%.\(digits)f", Double($0) / Double(max(events, 1))) }
            }
            let instructionsText = per(instructions, digits: 0)
                ?? callgrind.map { String(format: "%.0f (callgrind)", $0) } ?? "n/a"
            return "\(per(contextSwitches, digits: 1) ?? "n/a") context switches, \(instructionsText) instructions per event"
        }
    }

    private let perf: Process?
    private let output: URL
    /// perf counts for as long as the `cat` it runs lives, and `cat` lives until this pipe is
    /// closed. perf is not stopped with SIGINT because it would inherit that signal blocked
    /// from the dispatch thread that spawns it.
    private let duration = Pipe()

    /// Starts counting every thread of `pids` (threads they start later included); counts
    /// nothing when perf is not installed.
    init(pids: [Int32]) {
        output = FileManager.default.temporaryDirectory.appendingPathComponent("relay-benchmark-perf-\(UUID()).csv")
        let perf = Process()
        perf.executableURL = URL(fileURLWithPath: "/usr/bin/perf")
        perf.arguments = ["stat", "-x", ",", "-e", "context-switches,instructions", "-o", output.path,
                          "-p", pids.map(String.init).joined(separator: ","), "--", "cat"]
        perf.standardInput = duration
        perf.standardOutput = FileHandle.nullDevice
        perf.standardError = FileHandle.nullDevice
        do {
            try perf.run()
            self.perf = perf
        } catch {
            self.perf = nil
        }
    }

    /// Stops counting and reads what perf counted.
    func stop() -> Counts {
        guard let perf else { return Counts() }
        try? duration.fileHandleForWriting.close()
        perf.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: output) }
        guard let text = try? String(contentsOf: output, encoding: .utf8) else { return Counts() }
        var counts = Counts()
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count > 2, let value = Int(fields[0]) else { continue }
            if fields[2].hasPrefix("context-switches") { counts.contextSwitches = value }
            if fields[2].hasPrefix("instructions") { counts.instructions = value }
        }
        return counts
    }
}
