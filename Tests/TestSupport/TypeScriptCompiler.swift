public import Foundation

/// Debian's TypeScript compiler (`node-typescript`, `/usr/bin/tsc`), for checking that generated
/// SDKs compile.
public enum TypeScriptCompiler {
    public static let executable = "/usr/bin/tsc"

    public struct CompileError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `tsc --strict --noEmit` over every `.ts` file under `package/src`, with the settings
    /// the package's own tsconfig would use but independent of it (so a broken tsconfig cannot
    /// hide a broken file).
    public static func check(package: URL) async throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw CompileError(description: "\(executable) not found: scripts/install-deps.sh test installs node-typescript")
        }
        let source = package.appendingPathComponent("src")
        let files = try FileManager.default.contentsOfDirectory(atPath: source.path)
            .filter { $0.hasSuffix(".ts") }.sorted().map { source.appendingPathComponent($0).path }
        guard !files.isEmpty else {
            throw CompileError(description: "no TypeScript files in \(source.path)")
        }
        let result = try await runTool(executable, [
            "--strict", "--noEmit", "--target", "ES2020", "--module", "ES2020", "--moduleResolution", "node",
            "--noFallthroughCasesInSwitch", "--pretty", "false",
        ] + files)
        guard result.status == 0 else {
            throw CompileError(description: "tsc failed for \(package.path):\n\(result.output)\(result.errorOutput)")
        }
    }
}
