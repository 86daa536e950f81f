// swift-tools-version: 6.2
import PackageDescription

/// Settings every target shares: Swift 6 mode is the package default; these add the checks the
/// swift-server projects run in CI, so a missing `Sendable` or an implicit import fails the build.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "outbox-bridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "outbox-bridge", targets: ["outbox-bridge"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: [.defaults, "YAML"]),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.20.0"),
    ],
    targets: [
        // C bindings: only `Postgres/LibPQ` and `Kafka/RDKafka` import these.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"]), .brew(["librdkafka"])]
        ),

        // Postgres: connection, parameterised queries, transactions, LISTEN, errors.
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Kafka: producer with awaited delivery reports, consumer, embedded development broker.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Outbox: the event model and every statement on the outbox schema: the relay's claim
        // and mark, and the operators' status, replay, retention and audit reads.
        .target(
            name: "Outbox",
            dependencies: [
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Relay: wake, claim, route, publish, mark; shard leases for several instances.
        .target(
            name: "Relay",
            dependencies: [
                "Outbox",
                "Postgres",
                "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Consumers: the consumer-group runtime and its handlers (SDK generation, warehouse sync).
        .target(
            name: "Consumers",
            dependencies: [
                "Kafka",
                "Postgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Operations: status, delivery audit, replay, retention.
        .target(
            name: "Operations",
            dependencies: [
                "Outbox",
                "Postgres",
                "Kafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "FlyingFox", package: "FlyingFox"),
                .product(name: "FlyingSocks", package: "FlyingFox"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Command line: parses arguments and assembles services; the executable only calls it.
        .target(
            name: "OutboxBridgeCLI",
            dependencies: [
                "Postgres",
                "Kafka",
                "Outbox",
                "Relay",
                "Consumers",
                "Operations",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "outbox-bridge",
            dependencies: [
                "OutboxBridgeCLI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),

        // Benchmarks (not part of the test run): `scripts/bench-relay.sh`.
        .executableTarget(
            name: "relay-benchmark",
            dependencies: ["Postgres", "Kafka", "Outbox", .product(name: "Logging", package: "swift-log")],
            path: "Sources/RelayBenchmark",
            swiftSettings: strictSettings
        ),

        // Test support: helpers that reach real services (the throwaway PostgreSQL cluster,
        // the embedded broker, independent Kafka clients). Never linked into the product.
        .target(
            name: "TestSupport",
            dependencies: ["Postgres", "Kafka", "Outbox", "Relay", "OutboxBridgeCLI",
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            path: "Tests/TestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CaptureTests",
            dependencies: ["Outbox", "Postgres", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "RelayTests",
            dependencies: ["Relay", "Outbox", "Kafka", "Postgres", "OutboxBridgeCLI", "TestSupport",
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Configuration", package: "swift-configuration")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ConsumerTests",
            dependencies: ["Consumers", "Relay", "Outbox", "Kafka", "Postgres", "OutboxBridgeCLI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "OperationsTests",
            dependencies: ["Operations", "Relay", "Outbox", "Kafka", "Postgres", "OutboxBridgeCLI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BootstrapTests",
            dependencies: ["Consumers", "Relay", "Outbox", "Postgres", "OutboxBridgeCLI", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KafkaTests",
            dependencies: ["Kafka", "TestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
