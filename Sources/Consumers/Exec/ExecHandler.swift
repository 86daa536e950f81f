import Foundation
public import Logging

/// The `exec` consumer: runs one external command per event, so workers can be written in any
/// language (docs generation, compliance checks, dashboards).
///
/// - The command reads the event's JSON, exactly as the relay published it, on standard input;
///   the variables in ``EnvironmentVariable`` say what it is without parsing it.
/// - Exit status 0 means applied: the runtime commits the offset after it. Any other status, a
///   signal or the timeout is a retriable failure: the runtime retries with backoff, then
///   dead-letters the event to `<group>.dead-letter` with the exit status and the tail of the
///   command's standard error in `dead_letter_reason`.
/// - One command at a time: the runtime hands events over one by one, so a partition's events
///   run in order and never overlap. A command still running at ``ExecConfiguration/timeout``
///   is killed with its whole process group.
/// - Redelivery: a crash of the consumer mid-command leaves the offset uncommitted, so the event
///   runs again; commands must be idempotent by `OUTBOX_EVENT_ID`. (A consumer killed with
///   SIGKILL cannot stop the command it was running; `posix_spawn` offers no parent-death
///   signal.)
///
/// Events that the tenant or command-type filters leave out are committed without running
/// anything.
public struct ExecHandler: EventHandler {
    /// The variables set for the command, on top of the consumer's own environment.
    public enum EnvironmentVariable {
        /// `event_id`.
        public static let eventID = "OUTBOX_EVENT_ID"
        /// `tenant_id`; empty for events without a tenant.
        public static let tenant = "OUTBOX_TENANT"
        /// The command tag (`ALTER TABLE`, `SNAPSHOT`), or a domain event's type.
        public static let eventType = "OUTBOX_EVENT_TYPE"
        /// `kind`: `ddl`, `domain`, `drift`, `snapshot`, `snapshot_end`.
        public static let kind = "OUTBOX_EVENT_KIND"
        /// `tenant_seq`; empty when the event has none.
        public static let tenantSequence = "OUTBOX_TENANT_SEQ"
        /// `database`; empty when the event has none.
        public static let database = "OUTBOX_DATABASE"
        /// Where the record was read: topic, partition and offset.
        public static let topic = "OUTBOX_TOPIC"
        public static let partition = "OUTBOX_PARTITION"
        public static let offset = "OUTBOX_OFFSET"
    }

    public let name = "exec"
    public let configuration: ExecConfiguration
    private let logger: Logger

    public init(configuration: ExecConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
        let event = consumed.event
        guard configuration.selects(event) else { return }
        let command = ProcessGroupCommand(
            arguments: configuration.command,
            environment: [
                EnvironmentVariable.eventID: event.eventID,
                EnvironmentVariable.tenant: event.tenantID ?? "",
                EnvironmentVariable.eventType: event.command,
                EnvironmentVariable.kind: event.kind,
                EnvironmentVariable.tenantSequence: event.tenantSeq.map(String.init) ?? "",
                EnvironmentVariable.database: event.database ?? "",
                EnvironmentVariable.topic: consumed.topic,
                EnvironmentVariable.partition: String(consumed.partition),
                EnvironmentVariable.offset: String(consumed.offset),
            ],
            timeout: configuration.timeout,
            standardErrorTailBytes: configuration.standardErrorTailBytes)
        let outcome: ProcessGroupCommand.Outcome
        do {
            outcome = try await command.run(input: consumed.value)
        } catch {
            // A missing executable or a full /tmp: worth retrying, and dead-lettered with the
            // reason if it does not clear up.
            throw .retriable(error.description)
        }
        guard outcome.termination != .exited(0) else {
            logger.debug("command succeeded", metadata: ["event-id": "\(event.eventID)"])
            return
        }
        let tail = outcome.standardErrorTail.trimmingCharacters(in: .whitespacesAndNewlines)
        throw .retriable("\(outcome.termination); stderr tail: \(tail.isEmpty ? "(empty)" : tail)")
    }
}

/// What `exec` runs and for which events.
public struct ExecConfiguration: Sendable {
    /// The command and its arguments; the first is looked up in `PATH`. No default.
    public var command: [String]
    /// Only events of these tenants run the command. Default: empty, meaning every event, with or
    /// without a tenant.
    public var tenants: Set<String> = []
    /// Only events with these command tags (`ALTER TABLE`, `CREATE TABLE`) run the command.
    /// Default: empty, meaning every type.
    public var commandTypes: Set<String> = []
    /// How long one run may take before its process group is killed (and the run counts as a
    /// failure). Default: 60 s.
    public var timeout: Duration = .seconds(60)
    /// How much of the command's standard error a dead letter quotes. Default: 2048 bytes.
    public var standardErrorTailBytes = 2048

    public init(command: [String]) {
        self.command = command
    }

    func selects(_ event: SchemaChangeEvent) -> Bool {
        if !tenants.isEmpty, !tenants.contains(event.tenantID ?? "") { return false }
        if !commandTypes.isEmpty, !commandTypes.contains(event.command) { return false }
        return true
    }

    /// Problems that make the configuration unusable, one sentence each; empty when valid.
    public var problems: [String] {
        var problems: [String] = []
        if command.first?.isEmpty ?? true { problems.append("a command to run is required (after --)") }
        if timeout <= .zero { problems.append("the command timeout must be positive") }
        if standardErrorTailBytes < 0 { problems.append("the stderr tail size must not be negative") }
        return problems
    }
}
