import Foundation

/// The parameters of a libpq connection string, in either of libpq's forms: a URL
/// (`postgresql://user:secret@host:5432/db?target_session_attrs=read-write`, with several hosts
/// allowed) or `key=value` conninfo (`host=db password='it''s' target_session_attrs=any`).
///
/// The bridge reads two things from it before anything connects: the password, so it can be
/// redacted from every line the process writes, and `target_session_attrs`, so a value libpq
/// would reject is reported as a setting (exit 2) instead of as a failed connection.
struct ConnectionString {
    /// Parameter names as libpq spells them, with their last value (libpq lets a later one win).
    private(set) var parameters: [String: String] = [:]

    init(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://") {
            parseURL(trimmed)
        } else {
            parseKeywordValues(trimmed)
        }
    }

    var password: String? { parameters["password"] }

    /// The `target_session_attrs` values libpq 14 and later accept.
    static let targetSessionAttributes = ["any", "read-write", "read-only", "primary", "standby", "prefer-standby"]

    /// A one-sentence problem with the connection string that libpq would only report when
    /// connecting, or `nil`.
    var problem: String? {
        if let attributes = parameters["target_session_attrs"], !Self.targetSessionAttributes.contains(attributes) {
            return "target_session_attrs must be one of \(Self.targetSessionAttributes.joined(separator: ", ")), got \(attributes)"
        }
        return nil
    }

    private mutating func parseURL(_ url: String) {
        var rest = Substring(url[url.range(of: "://")!.upperBound...])
        if let query = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: query)...].split(separator: "&") {
                let (name, value) = Self.split(pair, at: "=")
                parameters[Self.percentDecoded(name)] = Self.percentDecoded(value)
            }
            rest = rest[..<query]
        }
        let authority = rest.prefix { $0 != "/" }
        // The user info ends at the last `@`: a password may contain an unencoded one.
        if let at = authority.lastIndex(of: "@") {
            let (_, password) = Self.split(authority[..<at], at: ":")
            if !password.isEmpty { parameters["password"] = Self.percentDecoded(password) }
        }
    }

    /// `key = value` pairs separated by whitespace; a value may be single-quoted, with `\'`
    /// and `\\` escapes, as libpq parses them.
    private mutating func parseKeywordValues(_ text: String) {
        var characters = Substring(text)
        func skipSpaces() { characters = characters.drop { $0.isWhitespace } }
        while true {
            skipSpaces()
            let name = characters.prefix { $0 != "=" && !$0.isWhitespace }
            guard !name.isEmpty else { return }
            characters = characters.dropFirst(name.count)
            skipSpaces()
            guard characters.first == "=" else { return }
            characters = characters.dropFirst()
            skipSpaces()
            var value = ""
            if characters.first == "'" {
                characters = characters.dropFirst()
                while let character = characters.first, character != "'" {
                    characters = characters.dropFirst()
                    if character == "\\", let escaped = characters.first {
                        value.append(escaped)
                        characters = characters.dropFirst()
                    } else {
                        value.append(character)
                    }
                }
                characters = characters.dropFirst()
            } else {
                let word = characters.prefix { !$0.isWhitespace }
                value = String(word)
                characters = characters.dropFirst(word.count)
            }
            parameters[String(name)] = value
        }
    }

    private static func split(_ text: Substring, at separator: Character) -> (Substring, Substring) {
        guard let index = text.firstIndex(of: separator) else { return (text, "") }
        return (text[..<index], text[text.index(after: index)...])
    }

    private static func percentDecoded(_ text: Substring) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }
}
