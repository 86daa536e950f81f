import Foundation
import Logging
import Synchronization

/// How log lines look: `logfmt` for people reading a terminal, `json` for log pipelines.
enum LogFormat: String, CaseIterable, Sendable {
    case logfmt, json
}

/// The one log handler of the process, so every command writes the same lines: logfmt at info
/// level until a long-running command's settings (`log.format`, `log.level`) choose otherwise.
/// swift-log takes a handler factory once per process, so the factory reads the current choice
/// whenever a logger is made.
enum ProcessLogging {
    private static let choice = Mutex((format: LogFormat.logfmt, level: Logger.Level.info))
    private static let installed: Void = LoggingSystem.bootstrap { label in
        let (format, level) = choice.withLock { $0 }
        return StructuredLogHandler(label: label, format: format, level: level)
    }

    /// Loggers made from now on write `format` lines from `level` up.
    static func use(format: LogFormat = .logfmt, level: Logger.Level = .info) {
        choice.withLock { $0 = (format, level) }
        _ = installed
    }
}

/// Writes one line per log event to standard error, as logfmt or JSON, with the metadata as
/// fields. Lines are written whole under a lock, so concurrent threads never interleave, and
/// with secrets masked (``SecretRedaction``), whoever composed the text.
struct StructuredLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    private static let output = Mutex(())

    init(label: String, format: LogFormat, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.now()),
            ("level", event.level.rawValue),
            ("logger", label),
            ("message", "\(event.message)"),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        fields += merged.sorted { $0.key < $1.key }.map { ($0.key, "\($0.value)") }
        let line = SecretRedaction.redact(format == .json ? Self.json(fields) : Self.logfmt(fields))
        Self.output.withLock { _ in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    /// The time now in UTC, as `2026-11-30T23:22:36.095`. Made from `gmtime_r`: Foundation's
    /// ISO 8601 format style loads ICU's time zone data on first use, about 5 MiB of resident
    /// memory for every long-running command, for a format that is always UTC.
    static func now() -> String {
        var clock = timespec()
        clock_gettime(CLOCK_REALTIME, &clock)
        var time = tm()
        gmtime_r(&clock.tv_sec, &time)
        func padded(_ value: Int, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(Int(time.tm_year) + 1900, 4))-\(padded(Int(time.tm_mon) + 1, 2))-\(padded(Int(time.tm_mday), 2))"
            + "T\(padded(Int(time.tm_hour), 2)):\(padded(Int(time.tm_min), 2)):\(padded(Int(time.tm_sec), 2))"
            + ".\(padded(clock.tv_nsec / 1_000_000, 3))"
    }

    static func logfmt(_ fields: [(String, String)]) -> String {
        fields.map { key, value in
            let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }
            guard needsQuotes else { return "\(key)=\(value)" }
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }.joined(separator: " ")
    }

    static func json(_ fields: [(String, String)]) -> String {
        let members = fields.map { key, value in "\(jsonString(key)):\(jsonString(value))" }
        return "{" + members.joined(separator: ",") + "}"
    }

    private static func jsonString(_ text: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
