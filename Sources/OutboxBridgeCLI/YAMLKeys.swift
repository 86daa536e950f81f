import Foundation

/// The keys a YAML settings file sets, as dotted paths (`relay.batchSize`), parents included
/// (`relay`), in file order: what ``SettingsReader`` compares with the keys the bridge reads.
///
/// The settings file is block-style YAML (as `config/bridge.yaml`), and this reads exactly that:
/// `key: value` lines nested by indentation, `- item` sequence entries (skipped), comments and
/// block scalars (`|`, `>`, skipped). A flow mapping (`relay: {batchSize: 5}`) would hide its keys
/// from the check, so it is refused with a line naming the key.
enum YAMLKeys {
    static func keys(in text: String) throws(ConfigurationError) -> [String] {
        var keys: [String] = []
        var path: [(indent: Int, key: String)] = []
        var blockScalarIndent: Int?
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.last == "\r" ? rawLine.dropLast() : rawLine
            let indent = line.prefix { $0 == " " }.count
            let content = line.dropFirst(indent)
            if let scalarIndent = blockScalarIndent {
                if content.isEmpty || indent > scalarIndent { continue }
                blockScalarIndent = nil
            }
            guard !content.isEmpty, !content.hasPrefix("#"), !content.hasPrefix("-"), content != "---" else { continue }
            guard let colon = keyEnd(in: content) else { continue }
            let key = unquoted(content[..<colon])
            let value = stripComment(content[content.index(after: colon)...])
            path.removeAll { $0.indent >= indent }
            path.append((indent, key))
            let dotted = path.map(\.key).joined(separator: ".")
            keys.append(dotted)
            if value.hasPrefix("{") {
                throw ConfigurationError(key: dotted, problem: "write it as an indented block, not a {…} flow mapping")
            }
            if value.hasPrefix("|") || value.hasPrefix(">") { blockScalarIndent = indent }
        }
        return keys
    }

    /// The index of the `:` that ends a key: followed by a space or the end of the line, and
    /// outside quotes.
    private static func keyEnd(in content: Substring) -> Substring.Index? {
        var quote: Character?
        var index = content.startIndex
        while index < content.endIndex {
            let character = content[index]
            let next = content.index(after: index)
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == ":", next == content.endIndex || content[next] == " " {
                return index
            }
            index = next
        }
        return nil
    }

    private static func unquoted(_ key: Substring) -> String {
        let trimmed = key.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 2, let first = trimmed.first, first == trimmed.last, first == "\"" || first == "'" else {
            return trimmed
        }
        return String(trimmed.dropFirst().dropLast())
    }

    private static func stripComment(_ value: Substring) -> String {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        return trimmed.hasPrefix("#") ? "" : trimmed
    }
}
