public import Foundation

/// A Swift value that can travel as a query parameter. Parameters go to the server in text
/// form through `PQexecParams`, never spliced into SQL, so quotes and backslashes in them are
/// data, not syntax.
public protocol PostgresBindable: Sendable {
    var postgresText: String { get }
}

/// A Swift value that can be read from a column's text form.
public protocol PostgresDecodable: Sendable {
    init?(postgresText: String)
}

extension String: PostgresBindable, PostgresDecodable {
    public var postgresText: String { self }
    public init?(postgresText: String) { self = postgresText }
}

extension Int: PostgresBindable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int32: PostgresBindable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int64: PostgresBindable, PostgresDecodable {
    public var postgresText: String { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Double: PostgresBindable, PostgresDecodable {
    public var postgresText: String { "\(self)" }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Bool: PostgresBindable, PostgresDecodable {
    public var postgresText: String { self ? "t" : "f" }
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension UUID: PostgresBindable, PostgresDecodable {
    public var postgresText: String { uuidString.lowercased() }
    public init?(postgresText: String) { self.init(uuidString: postgresText) }
}

/// A text array parameter (`$1::text[]`), quoted element by element in PostgreSQL's array
/// literal syntax so that commas, braces and quotes inside elements stay data.
public struct PostgresTextArray: PostgresBindable {
    public var elements: [String?]

    public init(_ elements: [String?]) { self.elements = elements }

    public var postgresText: String {
        // Built byte by byte: a batch of marks sends a thousand topic names at a time.
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            guard let element else {
                bytes += "NULL".utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in element.utf8 {
                if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An integer array parameter (`$1::bigint[]`), the cheap way to send a batch of ids in one
/// statement.
public struct PostgresInt64Array: PostgresBindable {
    public var elements: [Int64]

    public init(_ elements: [Int64]) { self.elements = elements }

    public var postgresText: String {
        // Digits written straight into one buffer: a claim sends every id in flight (thousands
        // while draining), and a String per element made this about a twentieth of the relay's
        // instructions per drained event.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(2 + elements.count * 8)
        bytes.append(UInt8(ascii: "{"))
        for (index, value) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            let firstDigit = bytes.count
            var rest = value.magnitude
            repeat {
                bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
                rest /= 10
            } while rest > 0
            bytes[firstDigit...].reverse()
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
