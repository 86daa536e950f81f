import Foundation
public import Logging

/// Quiet by default, because fault-injection tests make librdkafka log expected errors;
/// set `KAFKA_TEST_LOG=debug` (or another level) to see them.
public func makeKafkaTestLogger(_ label: String) -> Logger {
    guard let level = ProcessInfo.processInfo.environment["KAFKA_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) else {
        return Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    }
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}
