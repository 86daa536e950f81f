/// Turns names that come from tenants' DDL (any string PostgreSQL accepts as a quoted identifier)
/// into text that is safe where the SDK puts it: TypeScript string literals, comments and
/// identifiers, npm package names, directory names, Markdown. Nothing here ever emits a name
/// unescaped, so a column called `"; export const x = 1; //` stays a string.
enum SDKNames {
    /// A double-quoted literal valid both as a TypeScript string and as a JSON string: `"`, `\`,
    /// control characters and the line separators U+2028/U+2029 are escaped; everything else
    /// (including other Unicode) is kept as is.
    static func literal(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{2028}", "\u{2029}":
                result += "\\u" + hex4(scalar.value)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    result += "\\u" + hex4(scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    /// Text for inside a `/** … */` block: no sequence that closes the comment (`*/` becomes
    /// `*\/`), and no line terminators (each becomes a separate returned line).
    static func commentLines(_ text: String) -> [String] {
        // Scalars, not Characters: `*/` followed by a combining mark is one Character but still
        // closes the comment.
        var lines: [String] = []
        var line = String.UnicodeScalarView()
        var previous: Unicode.Scalar?
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n", "\r", "\u{2028}", "\u{2029}", "\u{85}":
                if !(scalar == "\n" && previous == "\r") {
                    lines.append(String(line))
                    line = String.UnicodeScalarView()
                }
            case "/" where previous == "*":
                line.append("\\")
                line.append("/")
            default:
                line.append(scalar)
            }
            previous = scalar
        }
        lines.append(String(line))
        return lines
    }

    /// One comment line: the text of ``commentLines(_:)`` joined with spaces.
    static func commentText(_ text: String) -> String {
        commentLines(text).joined(separator: " ")
    }

    /// An inline Markdown code span holding the name as a JSON-style literal, with a fence
    /// longer than any run of backticks inside.
    static func markdown(_ name: String) -> String {
        let body = literal(name)
        var longestRun = 0
        var run = 0
        for scalar in body.unicodeScalars {
            run = scalar == "`" ? run + 1 : 0
            longestRun = max(longestRun, run)
        }
        let fence = String(repeating: "`", count: longestRun + 1)
        return longestRun == 0 ? fence + body + fence : fence + " " + body + " " + fence
    }

    /// Words a generated type name must not take: TypeScript's reserved and contextual keywords
    /// (capitalised names cannot hit them, but a sanitised name may start with `_`), the global
    /// types an SDK refers to or users expect unshadowed, and the names the SDK itself exports.
    static let reservedTypeNames: Set<String> = [
        "Array", "ReadonlyArray", "Object", "String", "Number", "Boolean", "Symbol", "BigInt", "Function",
        "Date", "Error", "Promise", "Record", "Partial", "Required", "Readonly", "Pick", "Omit", "Exclude",
        "Extract", "NonNullable", "ReturnType", "Map", "Set", "WeakMap", "WeakSet", "JSON", "Math", "RegExp",
        "Uint8Array", "ArrayBuffer", "Iterable", "Iterator", "PropertyKey", "Infinity", "NaN", "Intl",
        "JsonValue", "Tables", "TableName", "TableDescription", "ColumnDescription", "EnumDescription",
        "any", "unknown", "never", "void", "undefined", "null", "object", "string", "number", "boolean",
        "symbol", "bigint", "type", "interface", "enum", "class", "const", "let", "var", "function",
        "export", "import", "default", "extends", "implements", "keyof", "typeof", "infer", "is", "as",
        "in", "of", "new", "this", "super", "true", "false", "declare", "namespace", "module", "global",
    ]

    /// A PascalCase TypeScript identifier for a table or enum name: ASCII letters and digits
    /// only (every other character separates words), never starting with a digit, never empty,
    /// never a name from ``reservedTypeNames``, and not one of `taken` (a numeric suffix
    /// `_2`, `_3`, … resolves collisions, in the order names are assigned).
    static func typeIdentifier(for name: String, avoiding taken: Set<String>) -> String {
        var base = ""
        var startOfWord = true
        for scalar in name.unicodeScalars {
            let isLetter = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
            let isDigit = scalar >= "0" && scalar <= "9"
            guard isLetter || isDigit else {
                startOfWord = true
                continue
            }
            let character = Character(scalar)
            base.append(startOfWord ? Character(character.uppercased()) : character)
            startOfWord = false
        }
        if base.isEmpty {
            base = "Unnamed"
        } else if base.first!.isNumber {
            base = "T" + base
        }
        if reservedTypeNames.contains(base) {
            base += "Type"
        }
        var candidate = base
        var suffix = 2
        while taken.contains(candidate) || reservedTypeNames.contains(candidate) {
            candidate = "\(base)_\(suffix)"
            suffix += 1
        }
        return candidate
    }

    /// The package's npm name: `<scope>/<slug>` where the slug is the tenant lowercased with
    /// every character outside `a-z 0-9 - . _` replaced by `-`. When that loses information (upper
    /// case, other characters, a leading `.` or `_`) an FNV-1a hash of the tenant is appended, so
    /// two tenants never share a name. At most 214 characters, npm's limit.
    static func npmPackageName(tenant: String, scope: String) -> String {
        var slug = ""
        for scalar in tenant.unicodeScalars {
            let isAllowed = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9")
                || scalar == "-" || scalar == "." || scalar == "_"
            if isAllowed {
                slug.unicodeScalars.append(scalar)
            } else if !slug.hasSuffix("-") {
                slug += "-"
            }
        }
        while let first = slug.first, first == "." || first == "_" || first == "-" {
            slug.removeFirst()
        }
        while slug.hasSuffix("-") {
            slug.removeLast()
        }
        let limit = 214 - scope.count - 1 - 9
        if slug != tenant || slug.isEmpty || slug.count > limit {
            slug = String(slug.prefix(limit))
            slug += (slug.isEmpty ? "tenant-" : "-") + fnv1a(tenant)
        }
        return "\(scope)/\(slug)"
    }

    /// The tenant's directory under the output directory: the tenant itself when it is a plain
    /// name (`[A-Za-z0-9_][A-Za-z0-9_.-]*`, at most 100 characters), else a sanitised form with
    /// a hash, so no tenant id can escape the output directory or hide as a dot file.
    static func directoryName(tenant: String) -> String {
        let plain = !tenant.isEmpty && tenant.count <= 100
            && tenant.unicodeScalars.allSatisfy { scalar in
                (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z")
                    || (scalar >= "0" && scalar <= "9") || scalar == "_" || scalar == "-" || scalar == "."
            }
            && tenant.first != "." && tenant.first != "-"
        if plain { return tenant }
        let npmSlug = npmPackageName(tenant: tenant, scope: "x").dropFirst(2)
        return "_" + npmSlug.prefix(120)
    }

    /// Name equality as PostgreSQL sees it: byte for byte. Swift's `==` treats canonically
    /// equivalent strings (`é` precomposed or not) as equal, but they are two different tables.
    static func same(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8)
    }

    /// Byte order of UTF-8, the deterministic sort order of everything the SDK lists.
    static func precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// FNV-1a over the UTF-8 bytes, 32 bits, as 8 lowercase hex digits: stable across runs and
    /// platforms, unlike `Hasher`.
    static func fnv1a(_ text: String) -> String {
        var hash: UInt32 = 0x811C_9DC5
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
