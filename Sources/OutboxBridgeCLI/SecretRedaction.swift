import Foundation
import Synchronization

/// Keeps passwords and keys out of every line the process writes: log lines at any level and
/// error lines alike, including text other libraries compose (a service's default description
/// printing its whole configuration, librdkafka's own log lines, libpq's messages).
///
/// Two layers, because neither alone is enough:
/// - every secret the settings hold (a database password, `sasl.password`, …) is registered
///   when the settings are read, and any occurrence of its value is replaced, in whatever text
///   it turns up;
/// - text that looks like a credential is masked even when its value was never registered: the
///   password of a `scheme://user:password@host` URL, and `name=value` pairs whose name is a
///   password, a secret or a private key.
enum SecretRedaction {
    static let mask = "***"

    /// Values shorter than this are masked only where they appear as a credential (the second
    /// layer): replacing every "ab" in every line would make the log unreadable.
    static let shortestRegisteredSecret = 4

    private static let registered = Mutex<Set<String>>([])

    /// `scheme://user:password@` and `name=value` with a secret name, value unquoted or quoted.
    private static let credentialPatterns: [(NSRegularExpression, String)] = [
        (try! NSRegularExpression(pattern: #"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^\s/]*@"#), "$1\(mask)@"),
        (try! NSRegularExpression(
            pattern: #"((?:^|[^A-Za-z0-9_.])[A-Za-z0-9_.]*(?:password|passwd|secret|ssl\.key\.pem|sasl\.oauthbearer\.config)[A-Za-z0-9_.]*["']?\s*[=:]\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s,&;)]+)"#,
            options: [.caseInsensitive]), "$1\(mask)"),
    ]

    /// Registers `secret` so that it is masked wherever it appears from now on.
    static func register(_ secret: String?) {
        guard let secret, secret.count >= shortestRegisteredSecret else { return }
        _ = registered.withLock { $0.insert(secret) }
    }

    /// Registers the password in a database URL or conninfo string.
    static func register(connectionString: String?) {
        guard let connectionString else { return }
        register(ConnectionString(connectionString).password)
    }

    /// Registers the values of the librdkafka properties that are secrets.
    static func register(kafkaProperties: [String: String]) {
        for (name, value) in kafkaProperties where isSecretKafkaProperty(name) {
            register(value)
        }
    }

    /// Registers every secret the command line holds, before any command reads its options: a
    /// connection string's password and the value of a secret `name=value` property, given as
    /// an argument of its own or as `--option=value`.
    static func register(arguments: [String]) {
        for argument in arguments {
            let value = argument.hasPrefix("--") ? argument.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init) : argument
            guard let value else { continue }
            register(connectionString: value)
            if let separator = value.firstIndex(of: "="), isSecretKafkaProperty(String(value[..<separator])) {
                register(String(value[value.index(after: separator)...]))
            }
        }
    }

    /// librdkafka properties whose value is a password, a client secret or key material
    /// (`sasl.password`, `ssl.key.password`, `ssl.keystore.password`,
    /// `sasl.oauthbearer.client.secret`, `ssl.key.pem`, `sasl.oauthbearer.config`, …).
    static func isSecretKafkaProperty(_ name: String) -> Bool {
        let name = name.lowercased()
        return name.contains("password") || name.contains("secret")
            || ["ssl.key.pem", "ssl_key", "sasl.oauthbearer.config"].contains(name)
    }

    /// `text` with every registered secret and every credential-looking value masked.
    static func redact(_ text: String) -> String {
        var redacted = text
        let secrets = registered.withLock { $0 }
        // Longest first, so a secret containing another is masked whole.
        for secret in secrets.sorted(by: { $0.count > $1.count }) where redacted.contains(secret) {
            redacted = redacted.replacingOccurrences(of: secret, with: mask)
        }
        for (pattern, template) in credentialPatterns {
            let range = NSRange(redacted.startIndex..., in: redacted)
            redacted = pattern.stringByReplacingMatches(in: redacted, range: range, withTemplate: template)
        }
        return redacted
    }
}
