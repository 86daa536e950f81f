import Foundation
import TestSupport
import Testing

/// A generated SDK is a package people install and import, not only source that compiles: it is
/// packed with `npm pack`, installed offline into a scratch project, and used from TypeScript
/// (`tsc --strict`, both module resolutions) and from Node (`require` and `import`).
@Suite("sdk-sync writes an npm package that installs and imports")
struct SDKPackageTests {
    @Test("npm pack, offline install, tsc --strict and node require/import all see the tenant's tables")
    func installsAndImports() async throws {
        let fixture = try await SDKFixture.start("sdk_package")
        try await fixture.run("""
            CREATE SCHEMA tenant_pkg;
            CREATE TYPE tenant_pkg.status AS ENUM ('on', 'off');
            CREATE TABLE tenant_pkg.sensors (id bigint PRIMARY KEY, label text NOT NULL, state tenant_pkg.status NOT NULL);
            """)
        let scratch = try NodeScratchProject()
        let tarball = try await scratch.pack(fixture.package("pkg"))
        try await scratch.install(tarball)

        let expected = #"{"tenant":"pkg","version":"1.1.0","tables":["sensors"],"columns":["id","label","state"],"enums":[["on","off"]]}"#
        let printSummary = """
            JSON.stringify({ tenant: sdk.tenant, version: sdk.version, tables: sdk.tables.map((t) => t.name),
              columns: sdk.tables[0].columns.map((c) => c.name), enums: sdk.enums.map((e) => [...e.values]) })
            """
        #expect(try await scratch.node(["-e", "const sdk = require('@outbox-sdk/pkg'); console.log(\(printSummary))"]) == expected)
        #expect(try await scratch.node([
            "--input-type=module", "-e", "import * as sdk from '@outbox-sdk/pkg'; console.log(\(printSummary))",
        ]) == expected)

        // The declarations carry the real row types and literal table names, not `any`.
        let typedUse = """
            const row: Sensors = { id: "1", label: "probe", state: "on" };
            const first: "sensors" = tables[0].name;
            const name: TableName = first;
            const states: readonly Status[] = enums[0].values;
            console.log(JSON.stringify({ tenant, version, row: row.label, name, states }));

            """
        let expectedTyped = #"{"tenant":"pkg","version":"1.1.0","row":"probe","name":"sensors","states":["on","off"]}"#
        try scratch.write("require.ts", """
            import { enums, tables, tenant, version, Sensors, Status, TableName } from "@outbox-sdk/pkg";
            \(typedUse)
            """)
        try scratch.write("import.mts", """
            import { enums, tables, tenant, version, type Sensors, type Status, type TableName } from "@outbox-sdk/pkg";
            \(typedUse)
            """)
        try await scratch.compile(["require.ts", "--module", "commonjs", "--moduleResolution", "node"])
        #expect(try await scratch.node(["out/require.js"]) == expectedTyped)
        try await scratch.compile(["import.mts", "--module", "node16", "--moduleResolution", "node16"])
        #expect(try await scratch.node(["out/import.mjs"]) == expectedTyped)

        try scratch.write("wrong.ts", """
            import { Sensors } from "@outbox-sdk/pkg";
            const row: Sensors = { id: 1, label: "probe", state: "maybe" };
            console.log(row);

            """)
        let wrong = try await scratch.tsc(["wrong.ts", "--module", "commonjs", "--moduleResolution", "node"])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("Type 'number' is not assignable to type 'string'"), "\(wrong.output)")
        #expect(wrong.output.contains(#"Type '"maybe"' is not assignable to type 'Status'"#), "\(wrong.output)")
    }

    @Test("Hostile names stay data in the compiled JavaScript and the declarations")
    func hostileNamesInDist() async throws {
        let fixture = try await SDKFixture.start("sdk_package_hostile")
        try await fixture.run(#"""
            CREATE SCHEMA tenant_evil;
            CREATE TABLE tenant_evil."*/ export const t = 1; /*" ("""; export const x = 1; //" text, U&"new\000aline" int);
            CREATE TABLE tenant_evil."__proto__" ("constructor" int);
            """#)
        let dist = fixture.package("evil").appendingPathComponent("dist")
        let declarations = try await runTool(TypeScriptCompiler.executable, [
            "--strict", "--noEmit", "--pretty", "false", "--moduleResolution", "node",
            dist.appendingPathComponent("index.d.ts").path,
        ])
        #expect(declarations.status == 0, "\(declarations.output)")
        // `import` of CommonJS adds `default` and `__esModule` to any module's namespace.
        let listNames = """
            console.log(JSON.stringify([Object.keys(sdk).filter((k) => k !== 'default' && k !== '__esModule').sort(), \
            sdk.tables.map((t) => [t.name, t.columns.map((c) => c.name)])]))
            """
        let expected = #"[["enums","tables","tenant","version"],[["*/ export const t = 1; /*",["\"; export const x = 1; //","new\nline"]],["__proto__",["constructor"]]]]"#
        let required = try await runTool("/usr/bin/node", ["-e", "const sdk = require(process.argv[1]); \(listNames)", dist.appendingPathComponent("index.js").path])
        #expect(required.output.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(required.errorOutput)")
        let imported = try await runTool("/usr/bin/node", [
            "--input-type=module", "-e", "const sdk = await import(process.argv[1]); \(listNames)", dist.appendingPathComponent("index.js").path,
        ])
        #expect(imported.output.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "\(imported.errorOutput)")
    }
}

/// An empty npm project in a temporary directory, with its own npm cache and npm told never to
/// reach the network, so installing a generated package proves it needs nothing from a registry.
private struct NodeScratchProject {
    let directory: URL
    private var environment: [String: String] {
        [
            "npm_config_cache": directory.appendingPathComponent(".npm-cache").path, "npm_config_offline": "true",
            "npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false",
        ]
    }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sdk-consumer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try write("package.json", #"{ "name": "sdk-consumer", "version": "1.0.0", "private": true }"#)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    /// Packs `package` into this directory; returns the tarball's path.
    func pack(_ package: URL) async throws -> String {
        let result = try await run("/usr/bin/npm", ["pack", "--pack-destination", directory.path], in: package)
        let name = try #require(result.output.split(whereSeparator: \.isNewline).last.map(String.init))
        return directory.appendingPathComponent(name).path
    }

    func install(_ tarball: String) async throws {
        _ = try await run("/usr/bin/npm", ["install", "--offline", "--no-save", tarball])
    }

    func node(_ arguments: [String]) async throws -> String {
        try await run("/usr/bin/node", arguments).output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `tsc --strict` into `out/`, failing the test on any diagnostic.
    func compile(_ arguments: [String]) async throws {
        let result = try await tsc(arguments)
        guard result.status == 0 else {
            throw TestEnvironmentError("tsc \(arguments.joined(separator: " ")):\n\(result.output)")
        }
    }

    func tsc(_ arguments: [String]) async throws -> ToolResult {
        try await runTool(
            TypeScriptCompiler.executable,
            ["--strict", "--target", "ES2020", "--outDir", "out", "--pretty", "false"] + arguments,
            environment: environment, currentDirectory: directory)
    }

    @discardableResult
    private func run(_ executable: String, _ arguments: [String], in directory: URL? = nil) async throws -> ToolResult {
        let result = try await runTool(executable, arguments, environment: environment, currentDirectory: directory ?? self.directory)
        guard result.status == 0 else {
            throw TestEnvironmentError("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.errorOutput)\(result.output)")
        }
        return result
    }
}
