public import Foundation
import Postgres
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The outcome of a finished command-line tool.
public struct ToolResult: Sendable {
    public let status: Int32
    public let outputData: Data
    public let errorOutput: String

    public var output: String { String(decoding: outputData, as: UTF8.self) }
}

/// Runs a tool to completion without blocking Swift's cooperative pool, collecting its output
/// through files so a chatty tool cannot stall on a full pipe. `input`, if any, is its
/// standard input.
///
/// A tool still running after `timeout` is killed and the call throws, naming it: a tool that
/// hangs (kcat retrying a broker that is gone, say) fails its test instead of stalling the run.
public func runTool(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil,
    input: Data? = nil, timeout: Duration = .seconds(180)
) async throws -> ToolResult {
    let directory = FileManager.default.temporaryDirectory
    let outputURL = directory.appendingPathComponent("tool-\(UUID().uuidString).out")
    let errorURL = directory.appendingPathComponent("tool-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: outputURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errorURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outputURL)
        try? FileManager.default.removeItem(at: errorURL)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
    }
    process.currentDirectoryURL = currentDirectory
    process.standardOutput = try FileHandle(forWritingTo: outputURL)
    process.standardError = try FileHandle(forWritingTo: errorURL)
    let inputPipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : inputPipe
    let exit = ToolExit()
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        exit.install(continuation)
        process.terminationHandler = { exit.finish(.success($0.terminationStatus)) }
        do {
            try process.run()
        } catch {
            exit.finish(.failure(error))
            return
        }
        let pid = process.processIdentifier
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) {
            let message = "\(executable) \(arguments.joined(separator: " ")) still running after \(timeout); killed"
            if exit.finish(.failure(TestEnvironmentError(message))) {
                kill(pid, SIGKILL)
            }
        }
        if let input {
            inputPipe.fileHandleForWriting.write(input)
            try? inputPipe.fileHandleForWriting.close()
        }
    }
    return ToolResult(
        status: status,
        outputData: (try? Data(contentsOf: outputURL)) ?? Data(),
        errorOutput: (try? String(contentsOf: errorURL, encoding: .utf8)) ?? "")
}

/// Resumes a tool's waiter exactly once: with its exit status, or with the timeout's error,
/// whichever comes first.
private final class ToolExit: Sendable {
    private let state = Mutex<CheckedContinuation<Int32, any Error>?>(nil)

    func install(_ waiter: CheckedContinuation<Int32, any Error>) {
        state.withLock { $0 = waiter }
    }

    /// - Returns: whether this call resumed the waiter (false once it has been resumed).
    @discardableResult
    func finish(_ outcome: Result<Int32, any Error>) -> Bool {
        guard let waiter = state.withLock({ state in defer { state = nil }; return state }) else { return false }
        waiter.resume(with: outcome)
        return true
    }
}
