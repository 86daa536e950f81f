import Synchronization

/// The statements of one connection, in call order: at most one in flight, the others queued.
///
/// A statement is sent by the thread that submits it (or that finished the one before it),
/// without blocking, and its reply is read by the `SocketReactor`'s thread when the socket turns
/// readable, so a reply wakes one thread, not three. The `PGconn` is never used by two threads
/// at once: whoever holds the in-flight statement's step owns it, and ownership passes through
/// `state` (a registration fires or is removed, never both).
///
/// Every statement is bounded by its deadline: one without a reply by then is cancelled on the
/// server and the connection closed (`.timedOut`). Cancelling the task of the statement in
/// flight does the same with `.closed`.
final class StatementExchange: Sendable {
    enum Statement: Sendable {
        /// By name when the statement was prepared on this connection, else with its text.
        case parameterized(PostgresStatement, [String?])
        /// Parses and plans `sql` once, kept on the connection under `name`.
        case prepare(name: String, sql: String)
        case script(String)
        /// Quoting needs no round trip, but it reads the connection's settings, so it takes
        /// its turn like a statement; the quoted text is the outcome's single cell.
        case quote(String, asLiteral: Bool)
    }

    typealias Outcome = Result<PostgresRows, PostgresError>

    /// Who hears a statement's outcome: a suspended task, or a callback that runs on the thread
    /// that finishes the statement (the reactor's, or the submitter's when sending fails).
    private enum Reply: Sendable {
        case task(CheckedContinuation<Outcome, Never>)
        case callback(@Sendable (Outcome) -> Void)

        func deliver(_ outcome: Outcome) {
            switch self {
            case .task(let continuation): continuation.resume(returning: outcome)
            case .callback(let callback): callback(outcome)
            }
        }
    }

    private final class Pending: Sendable {
        let ticket: UInt64
        let statement: Statement
        let deadline: ContinuousClock.Instant
        let reply: Reply

        init(ticket: UInt64, statement: Statement, deadline: ContinuousClock.Instant, reply: Reply) {
            self.ticket = ticket
            self.statement = statement
            self.deadline = deadline
            self.reply = reply
        }

        var sql: String {
            switch statement {
            case .parameterized(let statement, _): statement.sql
            case .script(let sql), .prepare(_, let sql): sql
            case .quote: "quoting"
            }
        }
    }

    private struct State {
        var nextTicket: UInt64 = 0
        var inFlight: Pending?
        /// Set when the in-flight statement's task is cancelled while its step is running:
        /// the step abandons the statement instead of waiting on.
        var inFlightCancelled = false
        var registration: SocketReactor.Registration?
        var queued: [Pending] = []
    }

    private let connection: LibPQConnection
    private let reactor: SocketReactor
    private let state = Mutex(State())

    init(connection: LibPQConnection, reactor: SocketReactor) {
        self.connection = connection
        self.reactor = reactor
    }

    func run(_ statement: Statement, deadline: ContinuousClock.Instant) async -> Outcome {
        let ticket = nextTicket()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                enqueue(Pending(ticket: ticket, statement: statement, deadline: deadline, reply: .task(continuation)))
            }
        } onCancel: {
            cancel(ticket)
        }
    }

    /// Runs `statement` without a task: `reply` hears the outcome on the thread that finishes
    /// it, so a caller that is itself driven by replies (the relay's engine) never waits on the
    /// cooperative pool. `reply` must not block.
    func submit(_ statement: Statement, deadline: ContinuousClock.Instant, reply: @escaping @Sendable (Outcome) -> Void) {
        enqueue(Pending(ticket: nextTicket(), statement: statement, deadline: deadline, reply: .callback(reply)))
    }

    private func nextTicket() -> UInt64 {
        state.withLock { state in
            state.nextTicket += 1
            return state.nextTicket
        }
    }

    private func enqueue(_ pending: Pending) {
        let startsNow = state.withLock { state in
            guard state.inFlight == nil else {
                state.queued.append(pending)
                return false
            }
            state.inFlight = pending
            return true
        }
        if startsNow { start(pending) }
    }

    private func start(_ pending: Pending) {
        do {
            let needsFlush: Bool
            switch pending.statement {
            case .parameterized(let statement, let parameters):
                needsFlush = try connection.send(statement.sql, preparedAs: statement.preparedName, parameters: parameters)
            case .prepare(let name, let sql):
                needsFlush = try connection.sendPrepare(name, sql: sql)
            case .script(let sql):
                needsFlush = try connection.sendScript(sql)
            case .quote(let text, let asLiteral):
                let quoted = try asLiteral ? connection.quoteLiteral(text) : connection.quoteIdentifier(text)
                return finish(pending, .success(PostgresRows(columnNames: ["quoted"], cells: [quoted], affectedRows: 0)))
            }
            awaitSocket(for: pending, writable: needsFlush)
        } catch {
            finish(pending, .failure(error))
        }
    }

    /// Hands the connection to the reactor until the socket is ready, unless the task was
    /// cancelled meanwhile.
    private func awaitSocket(for pending: Pending, writable: Bool) {
        let cancelled = state.withLock { state in
            if state.inFlightCancelled { return true }
            state.registration = reactor.watch(connection.socket, writable: writable, until: pending.deadline) {
                [self] readiness in
                step(pending, readiness: readiness, flushing: writable)
            }
            return false
        }
        if cancelled {
            abandon(pending, kind: .closed, because: "the task waiting for it was cancelled")
        }
    }

    /// Runs on the reactor's thread, which owns the connection now.
    private func step(_ pending: Pending, readiness: SocketReactor.Readiness, flushing: Bool) {
        let cancelled = state.withLock { state in
            state.registration = nil
            return state.inFlightCancelled
        }
        if cancelled {
            return abandon(pending, kind: .closed, because: "the task waiting for it was cancelled")
        }
        if case .timedOut = readiness {
            return abandon(pending, kind: .timedOut, because: "no reply within the deadline")
        }
        do {
            if flushing, try !connection.flushOutgoing() {
                return awaitSocket(for: pending, writable: true)
            }
        } catch {
            return finish(pending, .failure(error))
        }
        if let outcome = connection.readResults() {
            finish(pending, outcome)
        } else {
            awaitSocket(for: pending, writable: false)
        }
    }

    /// Cancelling the in-flight statement's task: if its registration is taken back before it
    /// fires, this thread owns the connection and abandons the statement; otherwise the step
    /// running now sees the flag. A queued statement runs when its turn comes.
    private func cancel(_ ticket: UInt64) {
        let owned: Pending? = state.withLock { state in
            guard let pending = state.inFlight, pending.ticket == ticket else { return nil }
            state.inFlightCancelled = true
            guard let registration = state.registration, reactor.remove(registration) else { return nil }
            state.registration = nil
            return pending
        }
        if let owned {
            abandon(owned, kind: .closed, because: "the task waiting for it was cancelled")
        }
    }

    private func abandon(_ pending: Pending, kind: PostgresError.Kind, because reason: String) {
        finish(pending, .failure(connection.abandon(pending.sql, kind: kind, because: reason)))
    }

    private func finish(_ pending: Pending, _ outcome: Outcome) {
        let next: Pending? = state.withLock { state in
            state.inFlightCancelled = false
            state.registration = nil
            state.inFlight = state.queued.isEmpty ? nil : state.queued.removeFirst()
            return state.inFlight
        }
        pending.reply.deliver(outcome)
        if let next { start(next) }
    }
}
