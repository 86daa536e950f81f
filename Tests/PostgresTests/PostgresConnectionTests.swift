import Foundation
import Postgres
import Synchronization
import TestSupport
import Testing

@Suite("PostgreSQL connection against a real server")
struct PostgresConnectionTests {
    @Test("parameters with quotes, backslashes, unicode and NULL round-trip unchanged")
    func parametersRoundTrip() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let awkward = [
            "it's a \"quoted\" value; DROP TABLE x; --",
            #"back\slash \\ and \n not a newline"#,
            "héllo wörld — 日本語 🐘 \u{0001}",
            "",
        ]
        for text in awkward {
            let rows = try await connection.query("SELECT $1::text AS value, length($1::text) AS length", [text])
            #expect(rows[0]["value"] == text)
            #expect(try rows[0].decode(Int.self, column: "length") == text.unicodeScalars.count)
        }
        let nullRow = try await connection.query("SELECT $1::text IS NULL AS is_null, $1::text AS value", [nil])
        #expect(try nullRow[0].decode(Bool.self, column: "is_null") == true)
        #expect(nullRow[0]["value"] == nil)
        let typed = try await connection.query(
            "SELECT $1::int8 AS big, $2::bool AS flag, $3::float8 AS ratio, $4::text[] AS list",
            [Int64.max, true, 0.25, PostgresTextArray(["a,b", "{c}", "\"d\"", nil])])
        #expect(try typed[0].decode(Int64.self, column: "big") == Int64.max)
        #expect(try typed[0].decode(Bool.self, column: "flag") == true)
        #expect(try typed[0].decode(Double.self, column: "ratio") == 0.25)
        #expect(typed[0]["list"] == #"{"a,b","{c}","\"d\"",NULL}"#)
    }

    @Test("bigint array parameters reach the server as the same numbers, extremes and sign included")
    func int64ArraysRoundTrip() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let arrays: [[Int64]] = [[], [0], [7, -7, 10, 1_000_000_007], [Int64.max, Int64.min, -1], Array(0..<2_000)]
        for values in arrays {
            let rows = try await connection.query(
                "SELECT cardinality($1::bigint[]) AS count, $1::bigint[]::text AS echoed", [PostgresInt64Array(values)])
            #expect(try rows[0].require(Int.self, column: "count") == values.count)
            #expect(rows[0]["echoed"] == "{" + values.map(String.init).joined(separator: ",") + "}")
        }
    }

    @Test("statements from concurrent tasks take turns on one connection, each getting its own result")
    func concurrentStatementsTakeTurns() async throws {
        let shared = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let other = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let results = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for value in 0..<200 {
                let connection = value.isMultiple(of: 3) ? other : shared
                group.addTask {
                    (value, try await connection.query("SELECT $1::int * 2 AS doubled", [value])[0].require(Int.self, column: "doubled"))
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0.value == $0.key * 2 })
    }

    @Test("a statement sent with a reply callback keeps its turn among awaited ones, and its reply comes on the thread that read it, not the caller's")
    func replyCallbacksKeepTheConnectionsOrder() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        try await connection.query("CREATE TEMPORARY TABLE turns (n int)")
        let callerThread = pthread_self()
        let replies = Mutex<[(value: Int?, onCallerThread: Bool)]>([])
        for value in 0..<50 {
            connection.query(PostgresStatement("INSERT INTO turns VALUES ($1) RETURNING n"), [value]) { outcome in
                let echoed = try? outcome.get()[0].require(Int.self, column: "n")
                replies.withLock { $0.append((echoed, pthread_equal(pthread_self(), callerThread) != 0)) }
            }
        }
        // Sent after the fifty, so it is answered after them: it sees every row.
        let count = try await connection.query("SELECT count(*)::int AS count FROM turns")[0].require(Int.self, column: "count")
        #expect(count == 50)
        let heard = replies.withLock { $0 }
        #expect(heard.map(\.value) == (0..<50).map(Optional.some), "each reply heard once, in the order sent")
        #expect(heard.allSatisfy { !$0.onCallerThread })

        let failed = Mutex<PostgresError?>(nil)
        connection.query(PostgresStatement("SELECT * FROM no_such_table")) { outcome in
            if case .failure(let error) = outcome { failed.withLock { $0 = error } }
        }
        try await connection.query("SELECT 1")
        #expect(failed.withLock { $0?.sqlState } == "42P01")
    }

    @Test("a prepared statement is kept on its connection's session and run by name with each call's parameters, awaited or with a reply")
    func preparedStatementsRunByName() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let doubled = try await connection.prepare("SELECT $1::int * 2 AS doubled", as: "doubled")
        for value in [1, -4, 21] {
            #expect(try await connection.query(doubled, [value])[0].require(Int.self, column: "doubled") == value * 2)
        }
        let replied = Mutex<Int?>(nil)
        connection.query(doubled, [50]) { outcome in
            replied.withLock { $0 = try? outcome.get()[0].require(Int.self, column: "doubled") }
        }
        let kept = try await connection.query(
            "SELECT statement, generic_plans + custom_plans AS runs FROM pg_catalog.pg_prepared_statements WHERE name = 'doubled'")
        #expect(replied.withLock { $0 } == 100, "the reply came before the statement sent after it")
        #expect(kept[0]["statement"] == "SELECT $1::int * 2 AS doubled")
        #expect(try kept[0].require(Int.self, column: "runs") == 4, "parsed once, then run four times by name")

        // Another session never saw it: a prepared statement belongs to the connection that prepared it.
        let other = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        await #expect(throws: PostgresError.self) { try await other.query(doubled, [1]) }
        #expect(try await other.query("SELECT 1 AS one")[0].require(Int.self, column: "one") == 1, "the failure left the session usable")
    }

    @Test("a statement larger than the socket's buffers is sent in full and answered")
    func largeStatementIsSentInFull() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let text = String(repeating: "outbox-", count: 2_000_000)
        let rows = try await connection.query("SELECT length($1::text) AS length, md5($1::text) = md5($2::text) AS same", [text, text])
        #expect(try rows[0].decode(Int.self, column: "length") == text.count)
        #expect(try rows[0].decode(Bool.self, column: "same") == true)
    }

    @Test("a syntax error surfaces SQLSTATE 42601 and the connection stays usable")
    func syntaxError() async throws {
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL())
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELEC 1")
        }
        #expect(error?.kind == .server)
        #expect(error?.sqlState == PostgresError.SQLState.syntaxError)
        #expect(error?.message.contains("syntax error") == true)
        #expect(try await connection.query("SELECT 1 AS one")[0]["one"] == "1")
    }

    @Test("a unique violation surfaces SQLSTATE 23505 with its detail")
    func uniqueViolation() async throws {
        let database = try await TestDatabase.create("unique")
        let connection = try await database.connect()
        try await connection.query("CREATE TABLE items (id int PRIMARY KEY)")
        try await connection.query("INSERT INTO items VALUES ($1)", [1])
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("INSERT INTO items VALUES ($1)", [1])
        }
        #expect(error?.sqlState == PostgresError.SQLState.uniqueViolation)
        #expect(error?.detail?.contains("(id)=(1)") == true)
        // The description leaves out the detail, which may quote row data.
        #expect(error.map { !$0.description.contains("(id)=(1)") } == true)
    }

    @Test("a transaction commits on success and rolls back when its body throws")
    func transactions() async throws {
        let database = try await TestDatabase.create("transactions")
        let connection = try await database.connect()
        try await connection.query("CREATE TABLE log (entry text)")
        try await connection.transaction { transaction in
            try await transaction.query("INSERT INTO log VALUES ($1)", ["kept"])
        }
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await connection.transaction { transaction in
                try await transaction.query("INSERT INTO log VALUES ($1)", ["discarded"])
                throw Abort()
            }
        }
        let rows = try await connection.query("SELECT entry FROM log ORDER BY entry")
        #expect(rows.map { $0["entry"] } == ["kept"])
    }

    @Test("identifiers from data are quoted by libpq, so hostile names are just names")
    func quotedIdentifiers() async throws {
        let database = try await TestDatabase.create("identifiers")
        let connection = try await database.connect()
        let hostile = #"tenant"; DROP TABLE x; -- */ select ü"#
        let quoted = try await connection.quoteIdentifier(hostile)
        try await connection.query("CREATE TABLE \(quoted) (id int)")
        let rows = try await connection.query("SELECT relname FROM pg_class WHERE relname = $1", [hostile])
        #expect(rows.count == 1)
    }

    @Test("a wrong database URL fails with one clear error instead of hanging")
    func wrongURL() async throws {
        let unreachable = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")
        }
        #expect(unreachable?.kind == .connectionFailed)
        #expect(unreachable?.description.contains("127.0.0.1") == true)
        let malformed = await #expect(throws: PostgresError.self) {
            try await PostgresConnection.connect("postgresql://[oops")
        }
        #expect(malformed?.kind == .connectionFailed)
    }

    @Test("every connection is finished once: the server sees each session end")
    func connectionsAreFinished() async throws {
        let clusterURL = try TestDatabase.clusterURL()
        let marker = "leak-check-\(UUID().uuidString.prefix(8))"
        var options = PostgresConnection.Options()
        options.applicationName = marker
        do {
            var connections: [PostgresConnection] = []
            for _ in 0..<5 {
                connections.append(try await PostgresConnection.connect(clusterURL, options: options))
            }
            let listener = try await PostgresListener.connect(clusterURL, channels: ["leak_check"], options: {
                var listenerOptions = PostgresListener.Options()
                listenerOptions.connection = options
                return listenerOptions
            }())
            let observer = try await PostgresConnection.connect(clusterURL)
            #expect(try await sessions(named: marker, seenBy: observer) == 6)
            listener.close()
            _ = connections
        }
        let observer = try await PostgresConnection.connect(clusterURL)
        try await waitUntil("all six sessions have ended") {
            try await sessions(named: marker, seenBy: observer) == 0
        }
    }

    private func sessions(named name: String, seenBy observer: PostgresConnection) async throws -> Int {
        let rows = try await observer.query(
            "SELECT count(*) AS sessions FROM pg_stat_activity WHERE application_name = $1", [name])
        return try rows[0].require(Int.self, column: "sessions")
    }
}
