/// PostgreSQL column types (as `format_type` prints them in events) to TypeScript types, for
/// values as `node-postgres` and most drivers return them by default:
///
/// | PostgreSQL | TypeScript | Why |
/// |---|---|---|
/// | `smallint`, `integer`, `real`, `double precision`, `oid` (`int2`, `int4`, `float4`, `float8`) | `number` | fits a double exactly |
/// | `bigint`, `numeric`, `decimal`, `money` (`int8`) | `string` | would overflow or round in a `number` |
/// | `boolean` | `boolean` | |
/// | `text`, `character varying`, `character`, `"char"`, `name`, `uuid`, `citext`, `bytea`, `inet`, `cidr`, `macaddr`, `macaddr8`, `bit`, `bit varying`, `xml`, `interval` | `string` | their text form |
/// | `timestamp`/`timestamptz`, `date`, `time`/`timetz` (any precision) | `string` | ISO text, no time zone guessing |
/// | `json`, `jsonb` | `JsonValue` | declared in every SDK |
/// | `T[]` (any dimensions) | `U[]` for `T`'s mapping `U` | elements' own NULLs are not modelled |
/// | an enum of the tenant known from its `CREATE TYPE` event | its string-literal union type | |
/// | anything else (domains, composites, ranges, extensions) | `unknown` | forces a check |
///
/// Type modifiers (`numeric(12,2)`, `character varying(20)`, `timestamp(3) …`) do not change the
/// mapping. Nullable columns add `| null` (done by the renderer, not here).
enum TypeScriptTypeMap {
    static let number: Set<String> = [
        "smallint", "integer", "real", "double precision", "oid", "int2", "int4", "float4", "float8", "int", "float",
    ]
    static let bigNumber: Set<String> = ["bigint", "int8", "numeric", "decimal", "money"]
    static let boolean: Set<String> = ["boolean", "bool"]
    static let text: Set<String> = [
        "text", "character varying", "varchar", "character", "char", "bpchar", "name", "uuid", "citext", "bytea",
        "inet", "cidr", "macaddr", "macaddr8", "bit", "bit varying", "varbit", "xml", "interval",
    ]
    static let time: Set<String> = [
        "timestamp without time zone", "timestamp with time zone", "timestamp", "timestamptz", "date",
        "time without time zone", "time with time zone", "time", "timetz",
    ]
    static let json: Set<String> = ["json", "jsonb"]

    /// A parsed `format_type` result: the (possibly schema-qualified) name without type
    /// modifiers, and how many `[]` followed it.
    struct ParsedType: Hashable {
        var schema: String?
        var name: String
        var arrayDimensions: Int
    }

    /// The TypeScript type for `pgType`, with `enumIdentifier` naming the union type of a
    /// tenant enum (`nil` when `schema.name` is not a known enum).
    static func typeScriptType(
        for pgType: String, enumIdentifier: (_ schema: String?, _ name: String) -> String?
    ) -> String {
        let parsed = parse(pgType)
        var base: String
        if let identifier = enumIdentifier(parsed.schema, parsed.name) {
            base = identifier
        } else if parsed.schema == nil || parsed.schema == "pg_catalog" {
            base = builtinType(parsed.name)
        } else {
            base = "unknown"
        }
        for _ in 0..<parsed.arrayDimensions {
            base += "[]"
        }
        return base
    }

    static func builtinType(_ name: String) -> String {
        if number.contains(name) { return "number" }
        if bigNumber.contains(name) { return "string" }
        if boolean.contains(name) { return "boolean" }
        if text.contains(name) || time.contains(name) { return "string" }
        if json.contains(name) { return "JsonValue" }
        return "unknown"
    }

    /// Splits `format_type` output into schema, name and array dimensions, honouring quoted
    /// identifiers (`"My Schema"."odd.type(1)"[]`) and dropping parenthesised type modifiers
    /// outside quotes.
    static func parse(_ pgType: String) -> ParsedType {
        var parts: [String] = []
        var current = ""
        var inQuotes = false
        var depth = 0
        var dimensions = 0
        let scalars = Array(pgType.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if inQuotes {
                if scalar == "\"" {
                    if index + 1 < scalars.count, scalars[index + 1] == "\"" {
                        current.unicodeScalars.append("\"")
                        index += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.unicodeScalars.append(scalar)
                }
            } else if depth > 0 {
                if scalar == "(" { depth += 1 } else if scalar == ")" { depth -= 1 }
            } else {
                switch scalar {
                case "\"": inQuotes = true
                case "(": depth = 1
                case ".":
                    parts.append(current)
                    current = ""
                case "[":
                    dimensions += 1
                case "]":
                    break
                case " " where current.isEmpty || current.unicodeScalars.last == " ":
                    break
                default:
                    current.unicodeScalars.append(scalar)
                }
            }
            index += 1
        }
        parts.append(current)
        let cleaned = parts.map { part in
            part.hasSuffix(" ") ? String(part.dropLast()) : part
        }
        let name = cleaned.last ?? ""
        let schema = cleaned.count > 1 ? cleaned[cleaned.count - 2] : nil
        return ParsedType(schema: schema, name: name, arrayDimensions: dimensions)
    }
}
