import Foundation
import Synchronization

/// What a consumer's status page and `/api/status` show: the lag per partition, the last event
/// applied for each tenant, and the latest dead letters. A value not known yet (a partition's
/// end before the first refresh, the event id of an undecodable record) is left out. Keys are
/// the properties' names in snake case, as the encoder of the operators' documents writes them.
public struct ConsumerStatus: Sendable, Codable {
    public struct Partition: Sendable, Codable, Equatable {
        public var topic: String
        public var partition: Int32
        public var nextOffset: Int64
        public var highWatermark: Int64?
        public var lag: Int64?
    }

    /// The latest event this consumer applied for one tenant (the record key).
    public struct AppliedEvent: Sendable, Codable, Equatable {
        public var tenant: String
        public var eventID: String
        public var command: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var appliedAt: String

        enum CodingKeys: String, CodingKey {
            case tenant, command, topic, partition, offset, appliedAt
            case eventID = "event_id"
        }
    }

    /// A record this consumer sent to its dead-letter topic.
    public struct DeadLetter: Sendable, Codable, Equatable {
        public var eventID: String?
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var reason: String
        public var at: String

        enum CodingKeys: String, CodingKey {
            case topic, partition, offset, reason, at
            case eventID = "event_id"
        }
    }

    public struct Readiness: Sendable, Codable, Equatable {
        public var ready: Bool
        public var problems: [String]
    }

    public var group: String
    public var partitions: [Partition]
    public var totalLag: Int64
    /// Events applied since this process started.
    public var applied: Int
    /// Most recent first, up to ``ConsumerActivity/listLimit`` tenants.
    public var lastApplied: [AppliedEvent]
    /// Most recent first, up to ``ConsumerActivity/listLimit``, since this process started.
    public var deadLetters: [DeadLetter]
    public var readiness: Readiness
}

/// Records what the runtime applies and dead-letters, in memory and bounded: the last event of
/// at most ``tenantLimit`` tenants (the least recently applied tenant is forgotten first) and the
/// last ``listLimit`` dead letters. Times are kept as dates and formatted only when asked for,
/// so recording costs the hot path little.
final class ConsumerActivity: Sendable {
    static let listLimit = 50
    static let tenantLimit = 1000

    private struct Applied {
        var consumed: ConsumedEvent
        var at: Date
    }

    private struct DeadLetter {
        var eventID: String?
        var topic: String
        var partition: Int32
        var offset: Int64
        var reason: String
        var at: Date
    }

    private struct State {
        var applied = 0
        var lastApplied: [String: Applied] = [:]
        var deadLetters: [DeadLetter] = []
    }

    private let state = Mutex(State())

    func applied(_ consumed: ConsumedEvent) {
        let tenant = consumed.key ?? consumed.event.tenantID ?? ""
        let now = Date()
        state.withLock { state in
            state.applied += 1
            state.lastApplied[tenant] = Applied(consumed: consumed, at: now)
            if state.lastApplied.count > Self.tenantLimit,
               let oldest = state.lastApplied.min(by: { $0.value.at < $1.value.at })?.key {
                state.lastApplied[oldest] = nil
            }
        }
    }

    func deadLettered(eventID: String?, topic: String, partition: Int32, offset: Int64, reason: String) {
        let letter = DeadLetter(eventID: eventID, topic: topic, partition: partition, offset: offset, reason: reason, at: Date())
        state.withLock { state in
            state.deadLetters.insert(letter, at: 0)
            if state.deadLetters.count > Self.listLimit { state.deadLetters.removeLast() }
        }
    }

    func status(lag: ConsumerLagSnapshot, readinessProblems: [String]) -> ConsumerStatus {
        let (applied, lastApplied, deadLetters) = state.withLock { state in
            (state.applied, state.lastApplied.sorted { $0.value.at > $1.value.at }.prefix(Self.listLimit), state.deadLetters)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return ConsumerStatus(
            group: lag.group,
            partitions: lag.partitions.map {
                ConsumerStatus.Partition(
                    topic: $0.topic, partition: $0.partition, nextOffset: $0.nextOffset,
                    highWatermark: $0.highWatermark, lag: $0.lag)
            },
            totalLag: lag.totalLag, applied: applied,
            lastApplied: lastApplied.map { tenant, applied in
                ConsumerStatus.AppliedEvent(
                    tenant: tenant, eventID: applied.consumed.event.eventID, command: applied.consumed.event.command,
                    topic: applied.consumed.topic, partition: applied.consumed.partition, offset: applied.consumed.offset,
                    appliedAt: formatter.string(from: applied.at))
            },
            deadLetters: deadLetters.map {
                ConsumerStatus.DeadLetter(
                    eventID: $0.eventID, topic: $0.topic, partition: $0.partition, offset: $0.offset, reason: $0.reason,
                    at: formatter.string(from: $0.at))
            },
            readiness: ConsumerStatus.Readiness(ready: readinessProblems.isEmpty, problems: readinessProblems))
    }
}
