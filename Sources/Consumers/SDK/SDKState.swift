/// Everything `sdk-sync` knows about one tenant, persisted next to the package as
/// `.outbox-sdk-state.json`: the current model (tables, enums), the package version, the
/// changelog, and the ids of every event already applied. The generated files are a pure
/// function of this state, so re-rendering after a crash gives the same bytes.
struct SDKState: Codable, Equatable, Sendable {
    /// Bumped if this file's layout changes incompatibly.
    var format: Int = 1
    var tenant: String
    /// `nil` until the first change that puts something in the package.
    var version: SemanticVersion?
    /// Sorted by name (UTF-8 byte order, ``SDKNames/precedes(_:_:)``).
    var tables: [SDKTable] = []
    /// Sorted by schema, then name.
    var enums: [SDKEnum] = []
    /// Oldest first.
    var changelog: [SDKChangelogEntry] = []
    /// Sorted; every event applied, including those that changed nothing in the package.
    var appliedEventIDs: [String] = []
    /// The highest `tenant_seq` applied (or passed over: domain events); `nil` in state written
    /// before sequence numbers, or when no event carried one.
    var lastTenantSeq: Int64?

    init(tenant: String) {
        self.tenant = tenant
    }

    func hasApplied(_ eventID: String) -> Bool {
        let index = appliedEventIDs.partitioningIndex { $0 >= eventID }
        return index < appliedEventIDs.count && appliedEventIDs[index] == eventID
    }

    mutating func recordSequence(_ sequence: Int64?) {
        guard let sequence else { return }
        lastTenantSeq = max(lastTenantSeq ?? sequence, sequence)
    }

    mutating func recordApplied(_ eventID: String) {
        let index = appliedEventIDs.partitioningIndex { $0 >= eventID }
        if index == appliedEventIDs.count || appliedEventIDs[index] != eventID {
            appliedEventIDs.insert(eventID, at: index)
        }
    }

    /// Type identifiers in use, by tables and enums.
    var takenIdentifiers: Set<String> {
        Set(tables.map(\.identifier)).union(enums.map(\.identifier))
    }

    func enumIdentifier(schema: String?, name: String) -> String? {
        enums.first { candidate in
            SDKNames.same(candidate.name, name) && (schema.map { SDKNames.same($0, candidate.schema) } ?? true)
        }?.identifier
    }

    func typeScriptType(of column: SDKColumn) -> String {
        TypeScriptTypeMap.typeScriptType(for: column.pgType) { enumIdentifier(schema: $0, name: $1) }
    }
}

struct SDKTable: Codable, Equatable, Sendable {
    var schema: String
    var name: String
    /// The exported interface's name, fixed when the table is added (or renamed) so adding
    /// another table never renames this one's interface.
    var identifier: String
    var comment: String?
    /// In attnum order.
    var columns: [SDKColumn]
    var primaryKey: [String]
}

struct SDKColumn: Codable, Equatable, Sendable {
    var name: String
    var pgType: String
    var nullable: Bool
    /// A default, identity or generation expression: inserts need not supply a value.
    var hasDefault: Bool
    var attnum: Int
    var comment: String?
}

struct SDKEnum: Codable, Equatable, Sendable {
    var schema: String
    var name: String
    var identifier: String
    var values: [String]
}

struct SDKChangelogEntry: Codable, Equatable, Sendable {
    var version: SemanticVersion
    /// The event's `occurred_at` date (`YYYY-MM-DD`).
    var date: String
    var eventID: String
    var command: String
    /// One Markdown line per change, most significant first.
    var changes: [String]
}

/// `major.minor.patch`. A tenant's package starts at 1.0.0 with its first change (whatever its
/// kind); each later event that changes the package bumps by its compatibility label.
struct SemanticVersion: Codable, Equatable, Comparable, Sendable, CustomStringConvertible {
    enum Level: Sendable {
        case patch, minor, major

        /// breaking → major, additive → minor, cosmetic → patch. An event without a label
        /// (captured before migration 16, or a snapshot correcting the package) may have changed
        /// anything, so it counts as breaking.
        init(_ compatibility: TableChanges.Compatibility?) {
            switch compatibility {
            case .cosmetic: self = .patch
            case .additive: self = .minor
            case .breaking, nil: self = .major
            }
        }
    }

    var major: Int
    var minor: Int
    var patch: Int

    static let initial = SemanticVersion(major: 1, minor: 0, patch: 0)

    var description: String { "\(major).\(minor).\(patch)" }

    func bumped(_ level: Level) -> SemanticVersion {
        switch level {
        case .major: SemanticVersion(major: major + 1, minor: 0, patch: 0)
        case .minor: SemanticVersion(major: major, minor: minor + 1, patch: 0)
        case .patch: SemanticVersion(major: major, minor: minor, patch: patch + 1)
        }
    }

    static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    init(major: Int, minor: Int, patch: Int) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        let parts = text.split(separator: ".").compactMap { Int($0) }
        guard parts.count == 3 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad version \(text)"))
        }
        self.init(major: parts[0], minor: parts[1], patch: parts[2])
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One change an event made to a tenant's package, as its changelog says it. How far the change
/// moves the version is the event's compatibility label (``SemanticVersion/Level``), not the
/// change's own.
struct SDKChange: Equatable, Sendable {
    /// Markdown; names inside are code spans from ``SDKNames/markdown(_:)``.
    var text: String
}

extension Array {
    /// The first index whose element satisfies `belongsInSecondPartition`, for a collection
    /// partitioned by it (binary search).
    fileprivate func partitioningIndex(where belongsInSecondPartition: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if belongsInSecondPartition(self[middle]) {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }
}
