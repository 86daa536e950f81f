import Foundation
import Postgres
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How far a long operator command (`audit`, `replay`, `prune`, `snapshot`) is, as one line on standard
/// error redrawn in place: done of total, rate and time left. It draws only on a terminal: a
/// log file or a pipe gets no carriage returns and no half lines, at most the one summary line
/// a command asks for at the end. Standard output stays the command's result.
final class ProgressReporter: Sendable {
    private struct State {
        var done = 0
        var total: Int?
        var lastDraw: ContinuousClock.Instant?
    }

    private let label: String
    private let drawing: Bool
    private let start = ContinuousClock.now
    private let state = Mutex(State())
    /// Redraws at most this often, so a fast loop does not spend its time writing to the terminal.
    private static let redrawInterval = Duration.milliseconds(200)

    /// - Parameters:
    ///   - total: how many items there are, when known; without it the line shows the rate and
    ///     the time so far.
    ///   - terminal: whether to draw; default: whether standard error is a terminal.
    init(_ label: String, total: Int? = nil, terminal: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.drawing = terminal
        state.withLock { $0.total = total }
    }

    /// Records that `done` items (of `total`, when it is learnt only now) are finished,
    /// redrawing if the last draw is old enough.
    func advance(to done: Int, of total: Int? = nil) {
        let now = ContinuousClock.now
        let due: State? = state.withLock { state in
            state.done = done
            state.total = total ?? state.total
            guard state.lastDraw.map({ now - $0 >= Self.redrawInterval }) ?? true else { return nil }
            state.lastDraw = now
            return state
        }
        if let due {
            draw(Self.line(label: label, done: due.done, total: due.total, elapsed: now - start, finished: false))
        }
    }

    /// Runs `work` (one long statement, say) redrawing the elapsed time while it runs.
    func whileRunning<Result: Sendable>(_ work: () async throws -> Result) async throws -> Result {
        guard drawing else { return try await work() }
        let ticker = Task { [self] in
            while !Task.isCancelled {
                advance(to: state.withLock { $0.done })
                try? await Task.sleep(for: Self.redrawInterval)
            }
        }
        defer { ticker.cancel() }
        return try await work()
    }

    /// Draws the final line and ends it. Off a terminal, writes `summary` lines only when asked.
    func finish(done: Int, summary: Bool = false) {
        let total = state.withLock { $0.total }
        let line = Self.line(label: label, done: done, total: total, elapsed: ContinuousClock.now - start, finished: true)
        if drawing {
            draw(line + "\n")
        } else if summary {
            FileHandle.standardError.write(Data("\(label) \(done)\(total.map { " of \($0)" } ?? "")\n".utf8))
        }
    }

    private func draw(_ line: String) {
        guard drawing else { return }
        // Carriage return and erase-line, so a shorter line leaves nothing of the longer one.
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
    }

    /// `audit: checked 1200 of 5000 (24%), 850/s, ETA 4s`; finished, `… done in 6.1s`.
    static func line(label: String, done: Int, total: Int?, elapsed: Duration, finished: Bool) -> String {
        let seconds = max(elapsed.seconds, 0.001)
        let rate = Double(done) / seconds
        var line = "\(label) \(done)"
        if let total {
            let percent = total > 0 ? min(100, done * 100 / total) : 100
            line += " of \(total) (\(percent)%)"
        }
        line += ", \(formatRate(rate))/s"
        if finished {
            line += ", done in \(formatSeconds(seconds))"
        } else if let total, done > 0, rate > 0 {
            line += ", ETA \(formatSeconds(Double(max(total - done, 0)) / rate))"
        } else {
            line += ", \(formatSeconds(seconds)) so far"
        }
        return line
    }

    private static func formatRate(_ rate: Double) -> String {
        rate >= 100 ? String(Int(rate.rounded())) : String(format: "%.1f", rate)
    }

    /// `0.4s`, `42s`, `3m05s`, `2h07m`.
    static func formatSeconds(_ seconds: Double) -> String {
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        let whole = Int(seconds.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return String(format: "%dm%02ds", whole / 60, whole % 60) }
        return String(format: "%dh%02dm", whole / 3600, (whole % 3600) / 60)
    }
}
