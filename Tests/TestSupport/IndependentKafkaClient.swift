import Foundation

/// Reads what landed in Kafka with tools that share no code path with the `Kafka` module:
/// `kcat` consumes and lists metadata, and kafka-python (Debian's `/usr/bin/python3`) computes
/// the Java client's murmur2 partition of a key.
public struct IndependentKafkaClient: Sendable {
    public let bootstrapServers: String

    public init(bootstrapServers: String) {
        self.bootstrapServers = bootstrapServers
    }

    /// One record as `kcat -J` prints it; kcat renders key, value and headers as text.
    public struct Record: Decodable, Sendable, Hashable {
        public let topic: String
        public let partition: Int32
        public let offset: Int64
        public let key: String?
        public let payload: String?
        /// Name, value, name, value, … as kcat flattens them.
        public let headers: [String]?

        public var headerPairs: [(name: String, value: String)] {
            let flat = headers ?? []
            return stride(from: 0, to: flat.count - 1, by: 2).map { (flat[$0], flat[$0 + 1]) }
        }

        /// The first header named `name`.
        public func header(_ name: String) -> String? {
            headerPairs.first { $0.name == name }?.value
        }
    }

    /// Consumes from `offset` to the current end of the partition (or of every partition when
    /// `partition` is nil), or only `count` records.
    public func consume(topic: String, partition: Int32? = nil, offset: String = "beginning", count: Int? = nil) async throws -> [Record] {
        var arguments = ["-C", "-b", bootstrapServers, "-t", topic, "-o", offset, "-e", "-J", "-q"]
        if let partition {
            arguments += ["-p", String(partition)]
        }
        if let count {
            arguments += ["-c", String(count)]
        }
        let output = try await Self.kcat(arguments)
        let decoder = JSONDecoder()
        return try output.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(Record.self, from: Data($0)) }
    }

    /// The partition count the cluster reports for `topic`, from `kcat -L`.
    public func partitionCount(topic: String) async throws -> Int {
        struct Metadata: Decodable {
            struct Topic: Decodable {
                let topic: String
                let partitions: [Partition]
            }
            struct Partition: Decodable {
                let partition: Int32
            }
            let topics: [Topic]
        }
        let output = try await Self.kcat(["-L", "-b", bootstrapServers, "-t", topic, "-J", "-q"])
        let metadata = try JSONDecoder().decode(Metadata.self, from: output)
        guard let entry = metadata.topics.first(where: { $0.topic == topic }) else {
            throw IndependentClientError(description: "kcat -L did not list topic \(topic)")
        }
        return entry.partitions.count
    }

    /// Produces one record with kafka-python (`acks=all`) and returns where the broker put it.
    public func produceWithKafkaPython(topic: String, key: String, value: String, header: (name: String, value: String)) async throws -> (partition: Int32, offset: Int64) {
        struct Stored: Decodable {
            let partition: Int32
            let offset: Int64
        }
        let script = """
            import json, sys
            from kafka import KafkaProducer
            bootstrap, topic, key, value, header_name, header_value = sys.argv[1:]
            producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
            stored = producer.send(topic, key=key.encode(), value=value.encode(),
                                   headers=[(header_name, header_value.encode())]).get(timeout=20)
            producer.close()
            json.dump({"partition": stored.partition, "offset": stored.offset}, sys.stdout)
            """
        let output = try await Self.run("/usr/bin/python3", ["-c", script, bootstrapServers, topic, key, value, header.name, header.value])
        let stored = try JSONDecoder().decode(Stored.self, from: output)
        return (stored.partition, stored.offset)
    }

    /// The broker ids the cluster advertises, from `kcat -L`.
    public func brokerIDs() async throws -> [Int32] {
        try await clusterMetadata().brokers.map(\.id).sorted()
    }

    /// The topics the cluster has, from `kcat -L`.
    public func topicNames() async throws -> Set<String> {
        Set(try await clusterMetadata().topics.map(\.topic))
    }

    private struct ClusterMetadata: Decodable {
        struct Broker: Decodable {
            let id: Int32
        }
        struct Topic: Decodable {
            let topic: String
        }
        let brokers: [Broker]
        let topics: [Topic]
    }

    /// The whole cluster's metadata: naming a topic would have a broker that creates topics on
    /// first use create it.
    private func clusterMetadata() async throws -> ClusterMetadata {
        try JSONDecoder().decode(ClusterMetadata.self, from: try await Self.kcat(["-L", "-b", bootstrapServers, "-J", "-q"]))
    }

    /// The partition the Java client's default partitioner picks for each key:
    /// `toPositive(murmur2(key)) % partitionCount`, computed by kafka-python's port of murmur2.
    public static func javaPartitions(forKeys keys: some Collection<String>, partitionCount: Int) async throws -> [String: Int32] {
        let script = """
            import json, sys
            from kafka.partitioner.default import murmur2
            keys = json.load(sys.stdin)
            json.dump({k: (murmur2(k.encode()) & 0x7fffffff) % \(partitionCount) for k in keys}, sys.stdout)
            """
        let output = try await run("/usr/bin/python3", ["-c", script], input: JSONEncoder().encode(Array(keys)))
        return try JSONDecoder().decode([String: Int32].self, from: output)
    }

    /// Runs a tool and returns what it printed, failing with its error output when it fails.
    /// kcat waits for metadata 5 s by default; the broker lives in the test process, which a
    /// loaded machine can stall for longer than that.
    static func kcat(_ arguments: [String]) async throws -> Data {
        try await run("/usr/bin/kcat", ["-m", "30"] + arguments)
    }

    static func run(_ executable: String, _ arguments: [String], input: Data? = nil) async throws -> Data {
        let result = try await runTool(executable, arguments, input: input)
        guard result.status == 0 else {
            throw IndependentClientError(
                description: "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.errorOutput)")
        }
        return result.outputData
    }
}

public struct IndependentClientError: Error, CustomStringConvertible {
    public let description: String
}
