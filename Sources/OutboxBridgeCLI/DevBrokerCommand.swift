import ArgumentParser
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import UnixSignals

struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Run librdkafka's in-memory mock Kafka cluster on loopback, for trying the relay out.",
        discussion: """
            Prints the bootstrap server list on standard output and serves until SIGINT or SIGTERM. \
            Nothing is persisted. Topics used without --topic are auto-created with \
            \(KafkaDevelopmentBroker.autoCreatedTopicPartitions) partitions.
            """
    )

    @Option(help: "Number of brokers in the cluster.")
    var brokers = 3

    @Option(help: "Partitions of each topic created with --topic.")
    var partitions = 6

    @Option(name: .customLong("topic"), help: "A topic to create at start (repeatable).")
    var topics: [String] = []

    @Option(help: "Also write the bootstrap server list to this file, atomically.")
    var bootstrapFile: String?

    @Option(help: "Serve the bootstrap list on this fixed loopback port (127.0.0.1:PORT), the same from one start to the next; the brokers' own ports still change.")
    var port: UInt16?

    func run() async throws {
        let logger = Logger(label: "outbox-bridge.dev-broker")
        let service: DevBrokerService
        do {
            service = try DevBrokerService(
                options: DevBrokerService.Options(
                    brokers: brokers, partitions: partitions, topics: topics, bootstrapFile: bootstrapFile, port: port
                ),
                logger: logger
            )
        } catch {
            printError(error.description)
            throw error.status
        }
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// The development cluster as a service: it is up once constructed and goes away when the
/// service group shuts it down.
struct DevBrokerService: Service {
    struct Options {
        var brokers: Int
        var partitions: Int
        var topics: [String]
        var bootstrapFile: String?
        /// A fixed loopback port that forwards to the first broker (``BootstrapForwarder``).
        var port: UInt16?
    }

    private let broker: KafkaDevelopmentBroker
    private let forwarder: BootstrapForwarder?
    private let logger: Logger

    /// Starts the cluster, creates the topics and announces the bootstrap list, so that by the
    /// time a script has read the list the cluster is ready.
    /// - Throws: ``DevBrokerError`` with a one-line explanation of what is wrong.
    init(options: Options, logger: Logger) throws(DevBrokerError) {
        guard options.brokers >= 1 else {
            throw DevBrokerError("--brokers must be at least 1, not \(options.brokers)")
        }
        guard options.partitions >= 1 else {
            throw DevBrokerError("--partitions must be at least 1, not \(options.partitions)")
        }
        if let emptyName = options.topics.firstIndex(where: \.isEmpty) {
            throw DevBrokerError("--topic number \(emptyName + 1) is empty")
        }
        do {
            broker = try KafkaDevelopmentBroker(brokers: options.brokers, logger: logger)
            for topic in options.topics {
                try broker.createTopic(topic, partitions: options.partitions, replicationFactor: min(options.brokers, 3))
            }
        } catch {
            throw DevBrokerError("could not start the development broker: \(error)", status: ExitStatus.problemFound)
        }
        self.logger = logger
        if let port = options.port {
            guard port > 0 else { throw DevBrokerError("--port must be between 1 and 65535, not 0") }
            let first = broker.bootstrapServers.split(separator: ",").first.map(String.init) ?? ""
            do {
                forwarder = try BootstrapForwarder(port: port, broker: first)
            } catch {
                throw DevBrokerError(error.description)
            }
        } else {
            forwarder = nil
        }
        let bootstrapServers = forwarder.map { "127.0.0.1:\($0.port)" } ?? broker.bootstrapServers
        if let path = options.bootstrapFile {
            do {
                try Data((bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw DevBrokerError(
                    "could not write --bootstrap-file \(path): \(error.localizedDescription)", status: ExitStatus.problemFound)
            }
        }
        logger.warning(
            "IN-MEMORY DEVELOPMENT KAFKA: for trying things out only; every record is lost when this process exits",
            metadata: [
                "bootstrap.servers": "\(bootstrapServers)",
                "brokers": "\(options.brokers)",
                "topics": "\(options.topics.joined(separator: ","))",
            ]
        )
        // Unbuffered, so a script reading our output sees the line at once.
        FileHandle.standardOutput.write(Data((bootstrapServers + "\n").utf8))
    }

    func run() async throws {
        // Returns when SIGINT or SIGTERM starts the group's graceful shutdown; the cluster goes
        // with the service.
        try? await gracefulShutdown()
        forwarder?.close()
        logger.info("development broker stopped")
    }
}

struct DevBrokerError: Error, CustomStringConvertible {
    let description: String
    /// ``ExitStatus/badSettings`` for an invalid option, the default.
    let status: ExitCode

    init(_ description: String, status: ExitCode = ExitStatus.badSettings) {
        self.description = description
        self.status = status
    }
}
