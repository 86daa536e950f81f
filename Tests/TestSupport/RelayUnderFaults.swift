import Foundation

/// An HTTP GET to `127.0.0.1:port` with curl, for `/health/*` and `/metrics`.
public func httpGet(port: Int, _ path: String) async throws -> (status: Int, body: String) {
    let result = try await runTool(
        "/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
}
