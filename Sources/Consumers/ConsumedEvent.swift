/// One Kafka record handed to a consumer's handler: the decoded event and where it was read.
public struct ConsumedEvent: Sendable {
    public var event: SchemaChangeEvent
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// The record key: the tenant (or schema name for events outside tenant schemas).
    public var key: String?
    /// The record's value as the relay published it (the event's JSON), for handlers that pass
    /// the event on unchanged, such as `exec`. Empty when the event was built without a record.
    public var value: [UInt8]

    public init(
        event: SchemaChangeEvent, topic: String, partition: Int32, offset: Int64, key: String?, value: [UInt8] = []
    ) {
        self.event = event
        self.value = value
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
    }
}

/// What a consumer does with each event. The runtime calls `handle` for every record in
/// partition order and commits the record's offset only after `handle` returns, so a handler
/// must make its effect durable before returning, and must be idempotent by
/// `event.eventID`: after a crash the same event is delivered again.
public protocol EventHandler: Sendable {
    /// The consumer's name in logs and metrics (`sdk-sync`).
    var name: String { get }

    /// Applies one event. Throwing `EventHandlerError.retriable` makes the runtime try again with
    /// backoff; `.permanent` sends the record to the dead-letter topic with the reason.
    func handle(_ event: ConsumedEvent) async throws(EventHandlerError)
}

/// Why a handler could not apply an event.
public enum EventHandlerError: Error, Sendable, CustomStringConvertible {
    /// Might succeed later (the warehouse is down, a file system is full).
    case retriable(String)
    /// Will never succeed (a retype the warehouse cannot apply safely); the event is
    /// dead-lettered with this reason.
    case permanent(String)

    public var description: String {
        switch self {
        case .retriable(let reason): "retriable: \(reason)"
        case .permanent(let reason): "permanent: \(reason)"
        }
    }
}
