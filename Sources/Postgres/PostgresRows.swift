/// The rows a statement returned, copied out of libpq's result so they outlive it and can
/// cross tasks.
public struct PostgresRows: Sendable, RandomAccessCollection {
    public let columnNames: [String]
    /// Rows inserted, updated or deleted, as the command tag reports it (`PQcmdTuples`).
    public let affectedRows: Int
    /// Cell texts, row after row; `nil` is SQL NULL.
    @usableFromInline let cells: [String?]

    init(columnNames: [String], cells: [String?], affectedRows: Int) {
        self.columnNames = columnNames
        self.cells = cells
        self.affectedRows = affectedRows
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { columnNames.isEmpty ? 0 : cells.count / columnNames.count }

    public subscript(position: Int) -> PostgresRow {
        PostgresRow(rows: self, index: position)
    }

    /// The position of the named column, for readers of many rows that look each name up once.
    public func position(of column: String) throws(PostgresError) -> Int {
        guard let position = columnNames.firstIndex(of: column) else {
            throw PostgresError(kind: .decoding, message: "the result has no column \(column)")
        }
        return position
    }
}

/// One row of a result; columns are read by position or by name, as text or decoded.
///
/// Its readers are `@inlinable` so that a caller in another module gets them specialised for
/// the type it decodes: unspecialised, every call looked up `Optional<T>`'s metadata at run
/// time, which was about a sixth of the relay's instructions per drained event.
public struct PostgresRow: Sendable {
    @usableFromInline let rows: PostgresRows
    @usableFromInline let index: Int

    /// The column's text, or `nil` for SQL NULL.
    @inlinable
    public subscript(column: Int) -> String? {
        rows.cells[index * rows.columnNames.count + column]
    }

    /// The named column's text, or `nil` for SQL NULL or a name the result lacks.
    @inlinable
    public subscript(column: String) -> String? {
        guard let position = rows.columnNames.firstIndex(of: column) else { return nil }
        return self[position]
    }

    /// The column decoded as `T`; `nil` only for SQL NULL.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, at column: Int) throws(PostgresError) -> T? {
        guard let text = self[column] else { return nil }
        guard let value = T(postgresText: text) else {
            throw PostgresError(
                kind: .decoding, message: "column \(rows.columnNames[column]) is not a valid \(T.self)")
        }
        return value
    }

    /// The named column decoded as `T`; `nil` only for SQL NULL.
    @inlinable
    public func decode<T: PostgresDecodable>(_ type: T.Type, column: String) throws(PostgresError) -> T? {
        try decode(type, at: try rows.position(of: column))
    }

    /// The column decoded as `T`, where NULL is an error: for columns declared NOT NULL.
    @inlinable
    public func require<T: PostgresDecodable>(_ type: T.Type, column: String) throws(PostgresError) -> T {
        try require(type, at: try rows.position(of: column))
    }

    /// The column at `column` decoded as `T`, where NULL is an error.
    @inlinable
    public func require<T: PostgresDecodable>(_ type: T.Type, at column: Int) throws(PostgresError) -> T {
        guard let value = try decode(type, at: column) else {
            throw PostgresError(kind: .decoding, message: "column \(rows.columnNames[column]) is NULL")
        }
        return value
    }
}
