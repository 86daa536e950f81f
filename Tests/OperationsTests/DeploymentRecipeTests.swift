import Foundation
import TestSupport
import Testing

/// The deployment recipe cannot be started here (no Docker engine runs on the development and CI
/// machines), so these tests check what can be checked without one: `docker-compose.yml` parses
/// as YAML (with Debian's python3-yaml, anchors and merge keys included), it wires the services
/// the way README.md's "Deployment with Docker Compose" section says, and the `Dockerfile` is the
/// two-stage build that section describes.
@Suite("Deployment recipe: docker-compose.yml and Dockerfile match the README")
struct DeploymentRecipeTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The services the README promises; the file may hold no others.
    static let expectedServices: Set = ["postgres", "kafka", "topics", "install", "bridge", "sdk-sync", "warehouse", "warehouse-sync"]

    /// One compose service, normalised by `composeReader`: `command` is always a list,
    /// `environment` a map and `depends_on` a map from service to condition.
    struct ComposeService: Decodable {
        let image: String?
        let build: Build?
        let command: [String]?
        let environment: [String: String]
        let dependsOn: [String: String]

        struct Build: Decodable {
            let context: String
            let dockerfile: String
        }

        enum CodingKeys: String, CodingKey {
            case image, build, command, environment
            case dependsOn = "depends_on"
        }

        var isBuiltFromDockerfile: Bool { build?.context == "." && build?.dockerfile == "Dockerfile" }
    }

    /// Parses the compose file with PyYAML and prints its services as JSON. Fails, rather than
    /// guessing, on shapes the tests do not expect.
    static let composeReader = #"""
        import json, shlex, sys, yaml

        with open(sys.argv[1]) as f:
            document = yaml.safe_load(f)
        services = {}
        for name, service in document["services"].items():
            build = service.get("build")
            if isinstance(build, str):
                build = {"context": build}
            if build is not None:
                build = {"context": build.get("context", "."), "dockerfile": build.get("dockerfile", "Dockerfile")}
            command = service.get("command")
            if isinstance(command, str):
                command = shlex.split(command)
            environment = service.get("environment") or {}
            if isinstance(environment, list):
                environment = dict(item.split("=", 1) for item in environment)
            depends_on = service.get("depends_on") or {}
            if isinstance(depends_on, list):
                depends_on = {dependency: "service_started" for dependency in depends_on}
            else:
                depends_on = {dependency: spec.get("condition", "service_started") for dependency, spec in depends_on.items()}
            services[name] = {
                "image": service.get("image"),
                "build": build,
                "command": command,
                "environment": {key: str(value) for key, value in environment.items()},
                "depends_on": depends_on,
            }
        json.dump(services, sys.stdout)
        """#

    static func composeServices(_ path: URL = repositoryRoot.appendingPathComponent("docker-compose.yml")) async throws -> [String: ComposeService] {
        let result = try await runTool("/usr/bin/python3", ["-c", composeReader, path.path])
        try #require(
            result.status == 0,
            "python3 could not read \(path.lastPathComponent) (needs python3-yaml: scripts/install-deps.sh test): \(result.errorOutput)")
        return try JSONDecoder().decode([String: ComposeService].self, from: result.outputData)
    }

    /// README.md's "Deployment with Docker Compose" section, up to the next `## ` heading.
    static func readmeSection() throws -> String {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let heading = "\n## Deployment with Docker Compose\n"
        let start = try #require(readme.range(of: heading), "README.md has no \"## Deployment with Docker Compose\" section")
        let rest = readme[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The section's service table: service name to what its image column says, either an image
    /// in backticks or "built from `Dockerfile`".
    static func readmeServiceTable(_ section: String) throws -> [String: String] {
        var table: [String: String] = [:]
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            try #require(cells.count >= 3, "malformed README table row: \(line)")
            let service = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            table[service] = cells[1]
        }
        return table
    }

    /// Every word in backticks in `text`.
    static func backticked(_ text: String) -> [String] {
        text.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { String($0.element) }
    }

    @Test("the README's service table and docker-compose.yml name the same services with the same images")
    func readmeAndComposeAgree() async throws {
        let services = try await Self.composeServices()
        let table = try Self.readmeServiceTable(try Self.readmeSection())

        #expect(Set(services.keys) == Self.expectedServices)
        #expect(Set(table.keys) == Set(services.keys), "services in README but not in the file, or the other way round")
        for (name, imageColumn) in table {
            guard let service = services[name] else { continue }
            if imageColumn.contains("Dockerfile") {
                #expect(service.isBuiltFromDockerfile, "README says \(name) is built from the Dockerfile")
            } else {
                let promised = Self.backticked(imageColumn)
                #expect(promised.count == 1 && promised.first == service.image, "README says \(name) runs \(imageColumn), the file says \(service.image ?? "no image")")
                #expect(service.build == nil, "\(name) is built, but README names an image")
            }
        }
        // The images the issue asks for.
        #expect(services["postgres"]?.image == "postgres:16")
        #expect(services["warehouse"]?.image == "postgres:16")
        #expect(services["kafka"]?.image?.hasPrefix("apache/kafka:3.") == true)
        for name in ["install", "bridge", "sdk-sync", "warehouse-sync"] {
            #expect(services[name]?.isBuiltFromDockerfile == true, "\(name) must be built from the Dockerfile")
        }
    }

    @Test("every service the README's commands use exists in docker-compose.yml")
    func readmeCommandsNameServices() async throws {
        let services = try await Self.composeServices()
        let section = try Self.readmeSection()
        let words = section.split(whereSeparator: { $0.isWhitespace || $0 == "`" }).map(String.init)
        var named: [String] = []
        for (index, word) in words.enumerated() where word == "exec" && index >= 2 && words[index - 2] == "docker" && index + 1 < words.count {
            named.append(words[index + 1])
        }
        #expect(Set(named) == ["postgres", "kafka", "warehouse", "sdk-sync"])
        for name in named {
            #expect(services[name] != nil, "the README runs `docker compose exec \(name)`, which the file does not define")
        }
        #expect(section.contains("docker compose up -d --build"))
        #expect(section.contains("kafka-console-consumer.sh"))
        #expect(section.contains("No Docker engine runs"))
    }

    @Test("install, bridge and the consumers run the right subcommands against the compose services")
    func servicesAreWired() async throws {
        let services = try await Self.composeServices()
        let bridge = try #require(services["bridge"])
        #expect(bridge.command == ["run"])
        let databaseURL = try #require(bridge.environment["DATABASE_URL"])
        #expect(URLComponents(string: databaseURL)?.host == "postgres")
        #expect(URLComponents(string: databaseURL)?.path == "/app")
        #expect(bridge.environment["KAFKA_BROKERS"] == "kafka:9092")
        #expect(bridge.environment["HTTP_PORT"] == "9090")
        #expect(bridge.dependsOn["install"] == "service_completed_successfully")
        #expect(bridge.dependsOn["topics"] == "service_completed_successfully")
        #expect(bridge.dependsOn["kafka"] == "service_healthy")

        let install = try #require(services["install"])
        #expect(install.command == ["install"])
        #expect(install.environment["DATABASE_URL"] == databaseURL, "install and the relay must use the same database")
        #expect(install.dependsOn["postgres"] == "service_healthy")

        let sdkSync = try #require(services["sdk-sync"])
        #expect(sdkSync.command?.first == "sdk-sync")
        #expect(sdkSync.command?.contains("--out") == true)
        #expect(sdkSync.environment["KAFKA_BROKERS"] == "kafka:9092")

        let warehouseSync = try #require(services["warehouse-sync"])
        let arguments = try #require(warehouseSync.command)
        #expect(arguments.first == "warehouse-sync")
        func option(_ name: String) -> String? {
            arguments.firstIndex(of: name).flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
        }
        #expect(option("--brokers") == "kafka:9092")
        #expect(URLComponents(string: option("--warehouse-url") ?? "")?.host == "warehouse")
        #expect(warehouseSync.dependsOn["warehouse"] == "service_healthy")

        // Whatever a service depends on must exist.
        for (name, service) in services {
            for dependency in service.dependsOn.keys {
                #expect(services[dependency] != nil, "\(name) depends on \(dependency), which is not defined")
            }
        }
    }

    @Test("the Dockerfile builds in a swift stage and runs on debian:bookworm-slim with sql/ installed where `install` finds it")
    func dockerfileHasTwoStages() throws {
        let dockerfile = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("Dockerfile"), encoding: .utf8)
        // Instructions only, with continuation lines joined.
        let instructions = dockerfile.replacingOccurrences(of: "\\\n", with: " ")
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let stageStarts = instructions.indices.filter { instructions[$0].uppercased().hasPrefix("FROM ") }
        #expect(stageStarts.count == 2, "expected a build stage and a runtime stage")
        let first = try #require(stageStarts.first.map { instructions[$0] })
        #expect(first.range(of: #"^FROM swift:6\.\d+(\.\d+)?-bookworm AS build$"#, options: [.regularExpression, .caseInsensitive]) != nil, "\(first)")
        let last = try #require(stageStarts.last)
        #expect(instructions[last] == "FROM debian:bookworm-slim")
        let build = instructions[stageStarts[0]..<last]
        let runtime = instructions[last...]
        #expect(build.contains { $0.contains("swift build -c release --product outbox-bridge --static-swift-stdlib") })
        #expect(runtime.contains { $0.hasPrefix("COPY --from=build ") && $0.hasSuffix(" /usr/local/bin/outbox-bridge") })
        #expect(runtime.contains { $0.hasPrefix("COPY ") && $0.hasSuffix(" /usr/local/share/outbox-bridge/sql") && $0.contains("sql") })
        #expect(runtime.contains { $0.hasPrefix("RUN ") && ["libpq5", "librdkafka1", "ca-certificates"].allSatisfy($0.contains) })
        let users = runtime.filter { $0.hasPrefix("USER ") }
        #expect(users.count == 1 && users.first != "USER root" && users.first != "USER 0", "the runtime stage must run as a non-root user")
        #expect(runtime.contains(#"ENTRYPOINT ["outbox-bridge"]"#))
    }

    @Test("a compose file that breaks the README's promises is caught")
    func brokenComposeIsCaught() async throws {
        let original = try String(contentsOf: Self.repositoryRoot.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        let broken = original
            .replacingOccurrences(of: "  sdk-sync:\n", with: "  sdk-sync-renamed:\n")
            .replacingOccurrences(of: "KAFKA_BROKERS: kafka:9092", with: "KAFKA_BROKERS: localhost:9092")
        #expect(broken != original)
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("compose-\(UUID().uuidString).yml")
        try broken.write(to: copy, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: copy) }
        let services = try await Self.composeServices(copy)
        #expect(Set(services.keys) != Self.expectedServices)
        #expect(services["bridge"]?.environment["KAFKA_BROKERS"] != "kafka:9092")
    }
}
