internal import CLibPQ
import Foundation
import Logging

/// Owns one `PGconn` and is the only code that calls libpq.
///
/// A `PGconn` is not thread-safe, so this type is confined: `PostgresConnection` and
/// `PostgresListener` call it only from their own serial queue or thread. That confinement,
/// not a lock, is why `@unchecked Sendable` is sound here. Every call may block on the network.
final class LibPQConnection: @unchecked Sendable {
    private let handle: OpaquePointer
    /// Receives libpq's notices (server NOTICEs, "message arrived while idle" after a backend
    /// is terminated), which libpq would otherwise print to stderr. Kept alive by this object
    /// because libpq holds only an unretained pointer to it.
    private let noticeLogger: NoticeLogger
    private init(handle: OpaquePointer, logger: Logger) {
        self.handle = handle
        self.noticeLogger = NoticeLogger(logger: logger)
        PQsetNoticeProcessor(handle, { context, message in
            guard let context, let message else { return }
            let notice = String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
            Unmanaged<NoticeLogger>.fromOpaque(context).takeUnretainedValue().logger.notice("\(notice)")
        }, Unmanaged.passUnretained(noticeLogger).toOpaque())
    }

    deinit {
        PQfinish(handle)
    }

    /// Connects with a URL or `key=value` conninfo. `defaults` come first, so any key the
    /// conninfo sets wins over them; the keys after `dbname` are forced, because the wrapper
    /// reads every value as UTF-8 text and waits on the socket itself.
    ///
    /// The connection is switched to non-blocking mode: every later call waits for the socket
    /// with `poll()` and a deadline instead of blocking inside libpq.
    static func connect(conninfo: String, defaults: [(String, String)], logger: Logger) throws(PostgresError) -> LibPQConnection {
        let settings = defaults + [
            ("dbname", conninfo),
            ("client_encoding", "UTF8"),
        ]
        let handle: OpaquePointer? = withCStringArray(settings.map(\.0)) { keys in
            withCStringArray(settings.map(\.1)) { values in
                PQconnectdbParams(keys, values, 1)
            }
        }
        guard let handle else {
            throw PostgresError(kind: .connectionFailed, message: "out of memory")
        }
        let connection = LibPQConnection(handle: handle, logger: logger)
        guard PQstatus(handle) == CONNECTION_OK else {
            throw PostgresError(kind: .connectionFailed, message: connection.lastErrorMessage)
        }
        guard PQsetnonblocking(handle, 1) == 0 else {
            throw PostgresError(kind: .connectionFailed, message: connection.lastErrorMessage)
        }
        return connection
    }

    var isConnected: Bool { !isAbandoned && PQstatus(handle) == CONNECTION_OK }

    var socket: Int32 { PQsocket(handle) }

    var backendPID: Int32 { PQbackendPID(handle) }

    private var lastErrorMessage: String {
        guard let text = PQerrorMessage(handle) else { return "unknown libpq error" }
        // libpq spreads one failure over indented lines; callers report it as one line.
        return String(cString: text).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// Runs one statement with out-of-line text parameters (`PQsendQueryParams`), waiting for
    /// its result on this thread no later than `deadline`. For connecting and listening; the
    /// statements of `PostgresConnection` wait on the `SocketReactor` instead.
    func execute(_ sql: String, parameters: [String?], deadline: ContinuousClock.Instant) throws(PostgresError) -> PostgresRows {
        var needsFlush = try send(sql, parameters: parameters)
        while needsFlush {
            try waitForSocket(writable: true, until: deadline, sql: sql)
            needsFlush = try !flushOutgoing()
        }
        while true {
            if let outcome = readResults() { return try outcome.get() }
            try waitForSocket(writable: false, until: deadline, sql: sql)
        }
    }

    /// Sends one statement with out-of-line text parameters without waiting: its text
    /// (`PQsendQueryParams`), or, when it was prepared as `preparedName`, only that name
    /// (`PQsendQueryPrepared`). Returns whether part of it is still buffered: then wait until
    /// the socket is writable and call `flushOutgoing`.
    func send(_ sql: String, preparedAs preparedName: String? = nil, parameters: [String?]) throws(PostgresError) -> Bool {
        try ensureUsable()
        let count = Int32(parameters.count)
        let sent = withOptionalCStringArray(parameters) { values in
            if let preparedName {
                PQsendQueryPrepared(handle, preparedName, count, values, nil, nil, 0)
            } else {
                PQsendQueryParams(handle, sql, count, nil, values, nil, nil, 0)
            }
        }
        guard sent == 1 else { throw lostOrFailed() }
        return try !flushOutgoing()
    }

    /// Sends a statement to be parsed and planned once and kept under `name` on this
    /// connection (`PQsendPrepare`), without waiting; returns like `send`. The server infers
    /// its parameters' types from the casts in its text.
    func sendPrepare(_ name: String, sql: String) throws(PostgresError) -> Bool {
        try ensureUsable()
        guard PQsendPrepare(handle, name, sql, 0, nil) == 1 else { throw lostOrFailed() }
        return try !flushOutgoing()
    }

    /// Sends a script of several statements with the simple query protocol (`PQsendQuery`), as
    /// migration files need, without waiting; returns like `send`. It takes no parameters by
    /// design. The first failing statement's error is the outcome; the server has rolled the
    /// script back by then unless it committed part of it itself.
    func sendScript(_ sql: String) throws(PostgresError) -> Bool {
        try ensureUsable()
        guard PQsendQuery(handle, sql) == 1 else { throw lostOrFailed() }
        return try !flushOutgoing()
    }

    /// Sends what libpq buffered without blocking; `true` once nothing is left. Reads what
    /// arrived meanwhile, as libpq asks, so a server that answers early never deadlocks us.
    func flushOutgoing() throws(PostgresError) -> Bool {
        switch PQflush(handle) {
        case 0:
            return true
        case 1:
            guard PQconsumeInput(handle) == 1 else { throw connectionLostError }
            return false
        default:
            throw lostOrFailed()
        }
    }

    /// Reads what the server sent for the statement in progress without blocking: nil while
    /// its results are still coming, then its outcome, which is the last result or the first
    /// error once all results are read, so the connection is ready for the next statement
    /// either way.
    func readResults() -> Result<PostgresRows, PostgresError>? {
        guard PQconsumeInput(handle) == 1 else { return finishResults(.failure(connectionLostError)) }
        while PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                return finishResults(pendingError.map { .failure($0) } ?? .success(pendingRows))
            }
            do {
                pendingRows = try consume(result)
            } catch {
                if pendingError == nil { pendingError = error }
            }
        }
        return nil
    }

    /// The last result and the first error read so far of the statement in progress.
    private var pendingRows = PostgresRows(columnNames: [], cells: [], affectedRows: 0)
    private var pendingError: PostgresError?

    private func finishResults(_ outcome: Result<PostgresRows, PostgresError>) -> Result<PostgresRows, PostgresError> {
        pendingRows = PostgresRows(columnNames: [], cells: [], affectedRows: 0)
        pendingError = nil
        return outcome
    }

    /// Waits until the socket is readable (or writable), or `deadline` passes. libpq may leave
    /// a socket readable with nothing more than an already-consumed message, so callers loop.
    private func waitForSocket(writable: Bool, until deadline: ContinuousClock.Instant, sql: String) throws(PostgresError) {
        switch WakePipe.wait(onSocket: PQsocket(handle), writable: writable, until: deadline) {
        case .socketReady:
            return
        case .timedOut, .woken:
            throw abandon(sql, kind: .timedOut, because: "no reply within the deadline")
        case .failed(let error):
            throw PostgresError(kind: .connectionLost, message: "poll on the connection's socket failed: errno \(error)")
        }
    }

    /// Gives up on a statement without its reply: asks the server to cancel it (on a thread of
    /// its own, since `PQcancel` opens a connection of its own and blocks), then shuts the
    /// socket down so the backend's session ends and nothing more is read from it. The
    /// connection is unusable afterwards: its protocol state is mid-statement.
    func abandon(_ sql: String, kind: PostgresError.Kind, because reason: String) -> PostgresError {
        isAbandoned = true
        if let cancel = PQgetCancel(handle) {
            let request = CancelRequest(cancel)
            let thread = Thread {
                Thread.current.name = "pg-cancel"  // see SocketReactor.init
                request.send()
            }
            thread.start()
        }
        shutdown(PQsocket(handle), Int32(SHUT_RDWR))
        let statement = sql.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return PostgresError(
            kind: kind,
            message: "\(reason) to `\(statement.prefix(60))` (backend \(backendPID)); cancelled it and closed the connection")
    }

    /// Set once a statement was abandoned: the socket is shut down and every later call fails
    /// at once.
    private var isAbandoned = false

    private func ensureUsable() throws(PostgresError) {
        if isAbandoned {
            throw PostgresError(kind: .closed, message: "the connection was abandoned with a statement in progress")
        }
    }

    /// Quotes an identifier with libpq's own rules, honouring the connection's encoding.
    func quoteIdentifier(_ identifier: String) throws(PostgresError) -> String {
        guard let quoted = PQescapeIdentifier(handle, identifier, identifier.utf8.count) else {
            throw PostgresError(kind: .decoding, message: lastErrorMessage)
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    /// Quotes a string literal with libpq's own rules, for the rare SQL that cannot take
    /// parameters (scripts run with the simple query protocol).
    func quoteLiteral(_ literal: String) throws(PostgresError) -> String {
        guard let quoted = PQescapeLiteral(handle, literal, literal.utf8.count) else {
            throw PostgresError(kind: .decoding, message: lastErrorMessage)
        }
        defer { PQfreemem(quoted) }
        return String(cString: quoted)
    }

    /// Reads what the server sent without blocking; `false` means the connection broke.
    func consumeInput() -> Bool {
        PQflush(handle) >= 0 && PQconsumeInput(handle) == 1 && isConnected
    }

    /// Notifications libpq has already read, in arrival order.
    func drainNotifications() -> [PostgresNotification] {
        var notifications: [PostgresNotification] = []
        while let notify = PQnotifies(handle) {
            let payload = notify.pointee
            notifications.append(PostgresNotification(
                channel: String(cString: payload.relname),
                payload: String(cString: payload.extra),
                backendPID: payload.be_pid))
            PQfreemem(notify)
        }
        return notifications
    }

    /// Sends a short statement without waiting for its result, for the listener's heartbeat.
    /// Whatever the kernel does not take at once stays buffered and is sent by the next
    /// `consumeInput`; an unanswered heartbeat is the listener's deadline.
    func sendQuery(_ sql: String) throws(PostgresError) {
        guard PQsendQuery(handle, sql) == 1, PQflush(handle) >= 0 else {
            throw lostOrFailed()
        }
    }

    /// Whether a result sent with `sendQuery` is still being received.
    var isBusy: Bool { PQisBusy(handle) == 1 }

    /// Collects the results of `sendQuery` once `isBusy` is false.
    func finishPendingResults() throws(PostgresError) {
        while let result = PQgetResult(handle) {
            _ = try consume(result)
        }
    }

    var connectionLostError: PostgresError {
        PostgresError(kind: .connectionLost, message: lastErrorMessage)
    }

    private func lostOrFailed() -> PostgresError {
        isConnected ? PostgresError(kind: .server, message: lastErrorMessage) : connectionLostError
    }

    /// Turns a `PGresult` into rows or an error, and frees it.
    private func consume(_ result: OpaquePointer?) throws(PostgresError) -> PostgresRows {
        guard let result else { throw lostOrFailed() }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PostgresRows(columnNames: [], cells: [], affectedRows: Self.affectedRows(result))
        case PGRES_TUPLES_OK:
            return Self.rows(of: result)
        default:
            let field = { (code: Int32) -> String? in
                PQresultErrorField(result, code).map { String(cString: $0) }
            }
            let sqlState = field(DiagnosticField.sqlState)
            // Without a SQLSTATE the failure came from libpq itself, usually a broken socket.
            if sqlState == nil, !isConnected { throw connectionLostError }
            throw PostgresError(
                kind: isConnected ? .server : .connectionLost,
                sqlState: sqlState,
                message: field(DiagnosticField.primaryMessage) ?? lastErrorMessage,
                detail: field(DiagnosticField.detail),
                hint: field(DiagnosticField.hint))
        }
    }

    private static func affectedRows(_ result: OpaquePointer) -> Int {
        guard let text = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: text)) ?? 0
    }

    private static func rows(of result: OpaquePointer) -> PostgresRows {
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        let names = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var cells: [String?] = []
        cells.reserveCapacity(Int(rowCount * columnCount))
        for row in 0..<rowCount {
            for column in 0..<columnCount {
                if PQgetisnull(result, row, column) == 1 {
                    cells.append(nil)
                } else {
                    let length = Int(PQgetlength(result, row, column))
                    let bytes = UnsafeRawBufferPointer(start: PQgetvalue(result, row, column), count: length)
                    cells.append(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        return PostgresRows(columnNames: names, cells: cells, affectedRows: Self.affectedRows(result))
    }
}

/// libpq's `PG_DIAG_*` field codes; they are character-literal macros Swift cannot import.
private enum DiagnosticField {
    static let sqlState = Int32(UInt8(ascii: "C"))
    static let primaryMessage = Int32(UInt8(ascii: "M"))
    static let detail = Int32(UInt8(ascii: "D"))
    static let hint = Int32(UInt8(ascii: "H"))
}

/// A `PGcancel`, which is independent of its connection and safe to use from another thread,
/// handed to the thread that sends the cancel request and freed there.
private final class CancelRequest: @unchecked Sendable {
    private let cancel: OpaquePointer

    init(_ cancel: OpaquePointer) {
        self.cancel = cancel
    }

    deinit {
        PQfreeCancel(cancel)
    }

    /// Best effort: a statement that is not cancelled still ends when its session does.
    func send() {
        var errorBuffer = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &errorBuffer, Int32(errorBuffer.count))
    }
}

private final class NoticeLogger: Sendable {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

/// Calls `body` with a C array of C strings, closed by a null, that live for the duration of
/// the call.
private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    withOptionalCStringArray(strings, body)
}

/// Like `withCStringArray`, with a null pointer for each `nil` (SQL NULL). The strings are
/// copied into one temporary buffer: a copy of each with `strdup` cost an allocation and a free
/// per parameter of every statement, about 8,000 instructions per claim or outcome write.
private func withOptionalCStringArray<R>(
    _ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R
) -> R {
    let byteCount = strings.reduce(0) { total, string in total + (string.map { $0.utf8.count + 1 } ?? 0) }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { bytes in
        withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: strings.count + 1) { pointers in
            var offset = 0
            for (index, string) in strings.enumerated() {
                guard var string else {
                    pointers[index] = nil
                    continue
                }
                let start = bytes.baseAddress! + offset
                string.withUTF8 { utf8 in
                    if let source = utf8.baseAddress { start.update(from: source, count: utf8.count) }
                    start[utf8.count] = 0
                    offset += utf8.count + 1
                }
                pointers[index] = UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)
            }
            pointers[strings.count] = nil
            return body(UnsafePointer(pointers.baseAddress!))
        }
    }
}
