public import Postgres

extension OutboxOperations {
    /// How many processed events are older than `age`: what ``prune(olderThan:batchSize:)``
    /// would delete now. Dead events are never counted, as they are never pruned.
    public func pruneCount(olderThan age: Duration) async throws(PostgresError) -> Int {
        try await connection.query(
            """
            SELECT count(*) AS n FROM \(quotedSchema).schema_changes
            WHERE processed AND processed_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
            """,
            [age.seconds])[0].require(Int.self, column: "n")
    }
}
