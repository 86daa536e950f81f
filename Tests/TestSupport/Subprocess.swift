public import Foundation

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
public func runTool(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, currentDirectory: URL? = nil,
    input: Data? = nil
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
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
        do {
            try process.run()
        } catch {
            continuation.resume(throwing: error)
            return
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
