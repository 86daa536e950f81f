import Foundation

/// A column type as the warehouse declares it, derived from the source column's `format_type`
/// text in an event.
///
/// Only PostgreSQL's built-in types are mirrored as themselves. Everything else becomes `text`
/// (arrays of it `text[]`): enums (their labels are text, and a warehouse has no use for the
/// source's enum types, which would have to be created and kept in step per tenant), domains,
/// composite and range types of the source's own schemas, and extension types (which the
/// warehouse may not have installed). `format_type` schema-qualifies every type outside
/// `pg_catalog` in the capture's session, so a user type can never pass for a built-in.
///
/// The SQL text of a warehouse type is generated from this value, never copied from the event,
/// so a type name in an event cannot inject SQL.
public struct WarehouseColumnType: Sendable, Hashable, CustomStringConvertible {
    public enum Base: Sendable, Hashable {
        case smallint, integer, bigint
        case real, doublePrecision
        /// `nil` precision: unconstrained `numeric`.
        case numeric(precision: Int?, scale: Int)
        case text
        /// `nil` length: `character varying` without a limit.
        case varchar(length: Int?)
        case character(length: Int)
        /// `nil` precision: the default (6).
        case timestamp(precision: Int?, withTimeZone: Bool)
        case time(precision: Int?, withTimeZone: Bool)
        /// A built-in type without modifiers that is mirrored as itself (`uuid`, `jsonb`, …).
        case plain(String)
    }

    public var base: Base
    public var isArray: Bool

    public init(_ base: Base, isArray: Bool = false) {
        self.base = base
        self.isArray = isArray
    }

    /// Built-in types without modifiers that the warehouse declares exactly as the source does.
    static let plainTypes: Set<String> = [
        "boolean", "bytea", "date", "uuid", "json", "jsonb", "interval", "money", "xml",
        "inet", "cidr", "macaddr", "macaddr8", "tsvector", "tsquery", "point", "line", "lseg",
        "box", "path", "polygon", "circle", "int4range", "int8range", "numrange", "tsrange",
        "tstzrange", "daterange", "jsonpath", "pg_lsn", "oid", "bit varying", "name", "\"char\"", "bpchar",
    ]

    /// The warehouse type for a source column type (`format_type` output). Never fails:
    /// whatever is not a recognised built-in becomes `text` (see the type's documentation).
    public init(sourceType: String) {
        var text = sourceType.trimmingCharacters(in: .whitespaces)
        var isArray = false
        // format_type writes one `[]` whatever the number of dimensions.
        while text.hasSuffix("[]") {
            isArray = true
            text.removeLast(2)
        }
        self.init(Self.parseBase(text) ?? .text, isArray: isArray)
    }

    /// A warehouse column's type as the warehouse catalog reports it (`format_type`), or `nil`
    /// for a type this sync would never have created (someone else changed the column).
    public init?(warehouseType: String) {
        var text = warehouseType
        var isArray = false
        if text.hasSuffix("[]") {
            isArray = true
            text.removeLast(2)
        }
        guard let base = Self.parseBase(text) else { return nil }
        self.init(base, isArray: isArray)
    }

    private static func parseBase(_ text: String) -> Base? {
        switch text {
        case "smallint": return .smallint
        case "integer": return .integer
        case "bigint": return .bigint
        case "real": return .real
        case "double precision": return .doublePrecision
        case "numeric": return .numeric(precision: nil, scale: 0)
        case "text": return .text
        case "character varying": return .varchar(length: nil)
        case "timestamp without time zone": return .timestamp(precision: nil, withTimeZone: false)
        case "timestamp with time zone": return .timestamp(precision: nil, withTimeZone: true)
        case "time without time zone": return .time(precision: nil, withTimeZone: false)
        case "time with time zone": return .time(precision: nil, withTimeZone: true)
        default: break
        }
        if plainTypes.contains(text) { return .plain(text) }
        // Forms with a modifier: `name(a[,b])[ suffix]`.
        guard let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")"), open < close else {
            return nil
        }
        let name = String(text[..<open])
        let suffix = String(text[text.index(after: close)...])
        let numbers = text[text.index(after: open)..<close].split(separator: ",", omittingEmptySubsequences: false)
            .map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !numbers.isEmpty, numbers.allSatisfy({ $0 != nil }) else { return nil }
        let values = numbers.compactMap { $0 }
        switch (name, suffix, values.count) {
        case ("numeric", "", 1): return .numeric(precision: values[0], scale: 0)
        case ("numeric", "", 2): return .numeric(precision: values[0], scale: values[1])
        case ("character varying", "", 1): return .varchar(length: values[0])
        case ("character", "", 1): return .character(length: values[0])
        case ("timestamp", " without time zone", 1): return .timestamp(precision: values[0], withTimeZone: false)
        case ("timestamp", " with time zone", 1): return .timestamp(precision: values[0], withTimeZone: true)
        case ("time", " without time zone", 1): return .time(precision: values[0], withTimeZone: false)
        case ("time", " with time zone", 1): return .time(precision: values[0], withTimeZone: true)
        default: return nil
        }
    }

    /// The type as SQL, in `format_type`'s spelling, so it compares equal to what the warehouse
    /// catalog reports for a column of this type.
    public var sql: String {
        let base: String = switch self.base {
        case .smallint: "smallint"
        case .integer: "integer"
        case .bigint: "bigint"
        case .real: "real"
        case .doublePrecision: "double precision"
        case .numeric(nil, _): "numeric"
        case .numeric(let precision?, let scale): "numeric(\(precision),\(scale))"
        case .text: "text"
        case .varchar(nil): "character varying"
        case .varchar(let length?): "character varying(\(length))"
        case .character(let length): "character(\(length))"
        case .timestamp(nil, let zone): "timestamp \(zone ? "with" : "without") time zone"
        case .timestamp(let precision?, let zone): "timestamp(\(precision)) \(zone ? "with" : "without") time zone"
        case .time(nil, let zone): "time \(zone ? "with" : "without") time zone"
        case .time(let precision?, let zone): "time(\(precision)) \(zone ? "with" : "without") time zone"
        case .plain(let name): name
        }
        return isArray ? base + "[]" : base
    }

    public var description: String { sql }

    /// Whether every value of `self` converts to `wider` without loss or failure, so that
    /// `ALTER COLUMN … TYPE wider USING column::wider` is safe on a warehouse full of data.
    ///
    /// Safe: the same type; anything to `text` (its text form; arrays element-wise); integers to
    /// wider integers, to `numeric` with enough integer digits, and `smallint`/`integer` to
    /// `double precision` (`smallint` also to `real`); `real` to `double precision`; `numeric`
    /// to more integer digits and at least as many fraction digits, or unconstrained;
    /// `varchar(n)`/`character(n)` to a longer or unbounded `varchar`, `text` to unbounded
    /// `varchar`; more fractional-second precision for `timestamp`/`time` (same time zone
    /// kind); `date` to `timestamp`. Everything else is unsafe: every narrowing, `text` to any
    /// other type, `bigint` to a float, a change of time zone kind, `json` to `jsonb`.
    public func widens(to wider: WarehouseColumnType) -> Bool {
        guard isArray == wider.isArray else { return false }
        if base == wider.base { return true }
        switch (base, wider.base) {
        case (_, .text): return true
        case (.text, .varchar(nil)): return true
        case (.smallint, .integer), (.smallint, .bigint), (.smallint, .real), (.smallint, .doublePrecision),
             (.integer, .bigint), (.integer, .doublePrecision),
             (.real, .doublePrecision):
            return true
        case (.smallint, .numeric(let precision, let scale)): return Self.holdsDigits(5, precision, scale)
        case (.integer, .numeric(let precision, let scale)): return Self.holdsDigits(10, precision, scale)
        case (.bigint, .numeric(let precision, let scale)): return Self.holdsDigits(19, precision, scale)
        case (.numeric(_?, _), .numeric(nil, _)):
            return true
        case (.numeric(let oldPrecision?, let oldScale), .numeric(let newPrecision?, let newScale)):
            return newScale >= oldScale && newPrecision - newScale >= oldPrecision - oldScale
        case (.varchar(let old?), .varchar(let new)), (.character(let old), .varchar(let new)):
            return new.map { $0 >= old } ?? true
        case (.character(let old), .character(let new)):
            return new >= old
        case (.timestamp(let old, let oldZone), .timestamp(let new, let newZone)),
             (.time(let old, let oldZone), .time(let new, let newZone)):
            return oldZone == newZone && (new ?? 6) >= (old ?? 6)
        case (.plain("date"), .timestamp(_, false)):
            return true
        default:
            return false
        }
    }

    /// Whether `numeric(precision, scale)` holds every number with `integerDigits` digits
    /// before the point.
    private static func holdsDigits(_ integerDigits: Int, _ precision: Int?, _ scale: Int) -> Bool {
        guard let precision else { return true }
        return precision - scale >= integerDigits
    }
}
