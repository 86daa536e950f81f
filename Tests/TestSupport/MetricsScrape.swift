import Foundation

extension RelayProcess {
    /// The port the bridge serves `/metrics` on, read from its start-up log line.
    public func observabilityPort() async throws -> Int {
        let marker = "observability endpoint listening"
        try await waitForStandardError(containing: marker)
        let field = standardErrorLines.first { $0.contains(marker) }?
            .split(separator: " ").first { $0.hasPrefix("port=") }
        guard let port = field.flatMap({ Int($0.dropFirst("port=".count)) }) else {
            throw TestEnvironmentError("no port= in the log line \"\(marker)\"; stderr:\n\(standardError.suffix(2000))")
        }
        return port
    }

    /// The value of the unlabelled series `metric` on this bridge's `/metrics` right now, or nil
    /// when it is not exported (yet).
    public func metric(_ metric: String, port: Int) async throws -> Double? {
        let scrape = try await runTool("/usr/bin/curl", ["-s", "-m", "10", "http://127.0.0.1:\(port)/metrics"])
        for line in scrape.output.split(separator: "\n") where line.hasPrefix(metric + " ") {
            return Double(line.dropFirst(metric.count + 1))
        }
        return nil
    }
}
