internal import CRdKafka
import Foundation
import Logging
import Synchronization

/// Owns one `rd_kafka_t` and makes every raw call on it.
///
/// `@unchecked Sendable` because librdkafka documents its handle as thread-safe (and the event
/// pipe's ends are only read by one thread, written by any): the producer's poll thread and the
/// tasks that produce use the same handle at once. Calls that block
/// (`poll`, `flush`, metadata, consumer poll, commit, close) must be made from a dedicated thread
/// or queue, never from Swift's cooperative pool; callers guarantee that.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind {
        case producer
        case consumer

        var rdKafkaType: rd_kafka_type_t {
            switch self {
            case .producer: RD_KAFKA_PRODUCER
            case .consumer: RD_KAFKA_CONSUMER
            }
        }
    }

    let handle: OpaquePointer
    let bootstrapServers: String
    /// Kept alive as long as `handle`: librdkafka's callbacks reach it through `rd_kafka_opaque`.
    private let context: RDKafkaClientContext
    private let counterScope: String
    /// A non-blocking pipe librdkafka writes a byte to whenever the main queue (delivery
    /// reports, logs, errors) goes from empty to non-empty, so a thread can sleep until there is
    /// something to serve. Closed only after the handle is destroyed: librdkafka writes to it
    /// until then.
    private let eventPipe: (read: Int32, write: Int32)
    /// Topic handles by name, made for a topic's first record and kept for the handle's life:
    /// a record that names its topic makes librdkafka look the topic up and take and drop a
    /// reference to it, on every record.
    private let topics = Mutex<[String: OpaquePointer]>([:])

    private init(
        handle: OpaquePointer, bootstrapServers: String, context: RDKafkaClientContext, eventPipe: (read: Int32, write: Int32)
    ) {
        self.handle = handle
        self.bootstrapServers = bootstrapServers
        self.context = context
        self.eventPipe = eventPipe
        counterScope = RDKafkaHandleCounter.created()
    }

    deinit {
        topics.withLock { topics in
            for topic in topics.values {
                rd_kafka_topic_destroy(topic)
            }
        }
        rd_kafka_destroy(handle)
        RDKafkaHandleCounter.destroyed(in: counterScope)
        if eventPipe.read >= 0 {
            Foundation.close(eventPipe.read)
            Foundation.close(eventPipe.write)
        }
    }

    /// Builds a configured handle. librdkafka takes ownership of the conf only when
    /// `rd_kafka_new` succeeds, so every failure path here destroys it.
    static func make(
        _ kind: Kind,
        properties: [String: String],
        logger: Logger,
        onDelivery: (@Sendable (RDKafkaDelivery) -> Void)? = nil,
        onFatalError: (@Sendable (KafkaError) -> Void)? = nil
    ) throws(KafkaError) -> RDKafkaClient {
        let context = RDKafkaClientContext(logger: logger, onDelivery: onDelivery, onFatalError: onFatalError)
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .invalidArgument, message: "rd_kafka_conf_new returned no configuration")
        }
        var errorText = [CChar](repeating: 0, count: 512)
        // Sorted so the first bad property reported is the same on every run.
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            guard rd_kafka_conf_set(conf, name, value, &errorText, errorText.count) == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(
                    code: .invalidArgument,
                    message: "librdkafka property \"\(name)\" rejected: \(errorText.nulTerminatedString)",
                    isRetriable: false
                )
            }
        }
        context.install(on: conf, deliveryReports: onDelivery != nil)

        guard let handle = rd_kafka_new(kind.rdKafkaType, conf, &errorText, errorText.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(
                code: .invalidArgument,
                message: "rd_kafka_new failed: \(errorText.nulTerminatedString)",
                isRetriable: false
            )
        }
        // Logs then wait in the main queue for the owner's poll instead of calling into Swift on
        // librdkafka's own threads (started with C11 `thrd_create`, which ThreadSanitizer and
        // other tools do not see). Lines logged during `rd_kafka_new` were delivered directly.
        rd_kafka_set_log_queue(handle, nil)
        // A consumer's main queue is forwarded to its consumer queue, which its own poll serves;
        // librdkafka signals only a destination queue, so only producers get the pipe.
        let eventPipe = kind == .producer ? signalMainQueue(of: handle) : (-1, -1)
        return RDKafkaClient(
            handle: handle, bootstrapServers: properties["bootstrap.servers"] ?? "", context: context, eventPipe: eventPipe)
    }

    /// Asks librdkafka to write a byte to a new non-blocking pipe whenever the handle's main queue
    /// becomes non-empty. Without a pipe (the process is out of descriptors) the waiting thread
    /// falls back to polling every 100 ms.
    private static func signalMainQueue(of handle: OpaquePointer) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return (-1, -1) }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        let queue = rd_kafka_queue_get_main(handle)
        var byte: UInt8 = 1
        rd_kafka_queue_io_event_enable(queue, ends[1], &byte, 1)
        rd_kafka_queue_destroy(queue)
        return (ends[0], ends[1])
    }

    // MARK: Producer

    /// Serves delivery reports, logs and errors; returns as soon as one event was served or the
    /// timeout passed.
    /// - Returns: how many events were served.
    @discardableResult
    func poll(timeoutMilliseconds: Int32) -> Int32 {
        rd_kafka_poll(handle, timeoutMilliseconds)
    }

    /// Sleeps until the main queue has something to serve or ``interruptEventWait()`` is
    /// called (then, or on a spurious wake-up, returns early: callers serve and wait again).
    /// Blocks its thread: only for a dedicated one.
    func waitForEvents() {
        guard eventPipe.read >= 0 else {
            rd_kafka_poll(handle, 100)
            return
        }
        var descriptor = pollfd(fd: eventPipe.read, events: Int16(POLLIN), revents: 0)
        while Glibc.poll(&descriptor, 1, -1) < 0 && errno == EINTR {}
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(eventPipe.read, &bytes, bytes.count) > 0 {}
    }

    /// Ends a ``waitForEvents()`` in progress, or the next one. Safe from any thread.
    func interruptEventWait() {
        guard eventPipe.write >= 0 else { return }
        var byte: UInt8 = 1
        _ = write(eventPipe.write, &byte, 1)
    }

    /// The handle for `name`, made on first use.
    private func topic(_ name: String) throws(KafkaError) -> OpaquePointer {
        let made: OpaquePointer? = topics.withLock { topics in
            if let topic = topics[name] { return topic }
            guard let topic = rd_kafka_topic_new(handle, name, nil) else { return nil }
            topics[name] = topic
            return topic
        }
        guard let made else { throw KafkaError(rd_kafka_last_error(), context: "topic \(name)") }
        return made
    }

    /// Enqueues one record; librdkafka copies key, value and headers before returning.
    /// - Returns: `nil` when enqueued, otherwise why not (e.g. ``KafkaErrorCode/queueFull``).
    func produce(_ record: KafkaRecord, token: UInt64) -> KafkaError? {
        let topic: OpaquePointer
        do {
            topic = try self.topic(record.topic)
        } catch {
            return error
        }
        let headers = rd_kafka_headers_new(record.headers.count)!
        for header in record.headers {
            // The name goes with its length, read in place: a `String` passed as a C string is
            // copied into a new array first, eight times per record.
            var name = header.name
            name.withUTF8 { name in
                name.withMemoryRebound(to: CChar.self) { name in
                    header.value.withOptionalUnsafeBytes { bytes in
                        _ = rd_kafka_header_add(headers, name.baseAddress, name.count, bytes?.baseAddress, bytes?.count ?? 0)
                    }
                }
            }
        }
        let failure: KafkaError? = record.value.withUnsafeBytes { value in
            record.key.withOptionalUnsafeBytes { key in
                // On the stack: an array here was one more allocation per record.
                withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 6) { fields in
                    var count = 0
                    func append(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                        var field = rd_kafka_vu_t()
                        field.vtype = type
                        fill(&field)
                        fields.initializeElement(at: count, to: field)
                        count += 1
                    }
                    append(RD_KAFKA_VTYPE_RKT) { $0.u.rkt = topic }
                    // An empty value goes as a null one (a tombstone), as `KafkaRecord` promises;
                    // an empty buffer's non-nil address would make it a zero-length value.
                    append(RD_KAFKA_VTYPE_VALUE) {
                        $0.u.mem = .init(
                            ptr: value.isEmpty ? nil : UnsafeMutableRawPointer(mutating: value.baseAddress), size: value.count)
                    }
                    if let key {
                        append(RD_KAFKA_VTYPE_KEY) {
                            $0.u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key.baseAddress), size: key.count)
                        }
                    }
                    append(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RD_KAFKA_MSG_F_COPY }
                    append(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token)) }
                    append(RD_KAFKA_VTYPE_HEADERS) { $0.u.headers = headers }
                    return rd_kafka_produceva(handle, fields.baseAddress, count).map(KafkaError.init(consuming:))
                }
            }
        }
        // On success librdkafka owns the header list; on failure it is still ours.
        if failure != nil {
            rd_kafka_headers_destroy(headers)
        }
        return failure
    }

    func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let result = rd_kafka_flush(handle, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "\(outstandingCount) records still unacknowledged after flush")
        }
    }

    /// Drops queued and in-flight records; their delivery reports (failed with `_PURGE_QUEUE` or
    /// `_PURGE_INFLIGHT`) are served by the next poll.
    /// - Parameter waiting: whether to wait for librdkafka's threads to let go of the records;
    ///   never from inside a callback of this handle, where waiting would deadlock.
    func purgeOutstanding(waiting: Bool = true) {
        let flags = RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT
        rd_kafka_purge(handle, waiting ? flags : flags | RD_KAFKA_PURGE_F_NON_BLOCKING)
    }

    /// Records not yet acknowledged plus reports and events not yet served.
    var outstandingCount: Int {
        Int(rd_kafka_outq_len(handle))
    }

    /// Puts the handle into the fatal state librdkafka enters on, for example, an idempotent
    /// producer's sequence failure, so tests can prove what happens then. librdkafka's own
    /// testing entry point; nothing in the product calls it.
    /// - Returns: `false` when the handle is in a fatal state already.
    func raiseFatalErrorForTesting(_ code: KafkaErrorCode, reason: String) -> Bool {
        rd_kafka_test_fatal_error(handle, code.rdKafkaCode, reason) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    // MARK: Metadata

    /// Asks a broker for cluster metadata, the cheapest request that proves a broker answers.
    /// - Returns: how many brokers the cluster advertises.
    func fetchBrokerCount(timeoutMilliseconds: Int32) throws(KafkaError) -> Int {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(result, context: "brokers unreachable: \(bootstrapServers)")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        return Int(metadata.pointee.broker_cnt)
    }

    /// Asks a broker for the partitions and leaders of `names`, so that each topic's first
    /// record goes out at once: librdkafka asks for a topic it first meets in a record only at
    /// its next topic scan, up to a second later. Brokers that create topics on first use
    /// create them now.
    /// - Returns: the topics the cluster reported an error for (an unknown topic, say).
    func lookUpTopics(_ names: [String], timeoutMilliseconds: Int32) throws(KafkaError) -> [String: KafkaError] {
        var problems: [String: KafkaError] = [:]
        for name in names {
            var metadata: UnsafePointer<rd_kafka_metadata>?
            let result = rd_kafka_metadata(handle, 0, try topic(name), &metadata, timeoutMilliseconds)
            guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
                throw KafkaError(result, context: "metadata of topic \(name)")
            }
            defer { rd_kafka_metadata_destroy(metadata) }
            let described = UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt))
            if let error = described.first(where: { $0.err != RD_KAFKA_RESP_ERR_NO_ERROR })?.err {
                problems[name] = KafkaError(error, context: "topic \(name)")
            }
        }
        return problems
    }

    func queryWatermarks(topic: String, partition: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaWatermarks {
        var low: Int64 = 0
        var high: Int64 = 0
        let result = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "watermarks of \(topic)[\(partition)]")
        }
        return KafkaWatermarks(low: low, high: high)
    }

    // MARK: Consumer

    /// Routes logs, errors and rebalances to the consumer queue so `consumerPoll` serves them.
    func redirectMainQueueToConsumer() {
        rd_kafka_poll_set_consumer(handle)
    }

    func subscribe(topics: [String]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(capacity: topics.count)
        for topic in topics {
            list.add(topic: topic, partition: RD_KAFKA_PARTITION_UA)
        }
        let result = rd_kafka_subscribe(handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "subscribe to \(topics)")
        }
    }

    /// Starts fetching exactly one partition at `offset`, outside any consumer group.
    func assign(topic: String, partition: Int32, offset: Int64) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(capacity: 1)
        list.add(topic: topic, partition: partition, offset: offset)
        let result = rd_kafka_assign(handle, list.pointer)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "assign \(topic)[\(partition)]@\(offset)")
        }
    }

    func unassign() {
        rd_kafka_assign(handle, nil)
    }

    /// - Returns: the next message, or `nil` when none arrived within the timeout (or the poll
    ///   served an end-of-partition event, which only clients with `enable.partition.eof` get).
    func consumerPoll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        guard case .message(let message)? = try consumerPollEvent(timeoutMilliseconds: timeoutMilliseconds) else {
            return nil
        }
        return message
    }

    /// Like ``consumerPoll(timeoutMilliseconds:)``, but also reports reaching a partition's end,
    /// which librdkafka delivers as a message carrying `_PARTITION_EOF` instead of a record.
    /// - Returns: the next event, or `nil` when none arrived within the timeout.
    func consumerPollEvent(timeoutMilliseconds: Int32) throws(KafkaError) -> RDKafkaConsumerEvent? {
        guard let message = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else {
            return nil
        }
        defer { rd_kafka_message_destroy(message) }
        let fields = message.pointee
        let topic = fields.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if fields.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            return .partitionEnd(topic: topic, partition: fields.partition, nextOffset: fields.offset)
        }
        guard fields.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let detail = fields.payload.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) }
            throw KafkaError(fields.err, context: "consume \(topic)[\(fields.partition)]" + (detail.map { ": \($0)" } ?? ""))
        }
        return .message(KafkaMessage(
            topic: topic,
            partition: fields.partition,
            offset: fields.offset,
            key: fields.key.map { Array(UnsafeRawBufferPointer(start: $0, count: fields.key_len)) },
            value: fields.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: fields.len)) },
            headers: Self.headers(of: message)
        ))
    }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else {
            return []
        }
        var headers: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            headers.append(KafkaHeader(
                name: name.map { String(cString: $0) } ?? "",
                value: value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
            ))
            index += 1
        }
        return headers
    }

    /// Commits synchronously that everything before `nextOffset` has been processed.
    func commit(topic: String, partition: Int32, nextOffset: Int64) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(capacity: 1)
        list.add(topic: topic, partition: partition, offset: nextOffset)
        let result = rd_kafka_commit(handle, list.pointer, 0)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "commit \(topic)[\(partition)]@\(nextOffset)")
        }
    }

    /// Leaves the consumer group cleanly so its partitions are reassigned at once rather than
    /// after the session timeout.
    func closeConsumer() throws(KafkaError) {
        let result = rd_kafka_consumer_close(handle)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "close consumer")
        }
    }
}

/// What one consumer poll served.
enum RDKafkaConsumerEvent {
    case message(KafkaMessage)
    /// The consumer has read everything the partition held: `nextOffset` is its high watermark
    /// at that moment. Delivered only with `enable.partition.eof=true`.
    case partitionEnd(topic: String, partition: Int32, nextOffset: Int64)
}

/// A delivery report detached from librdkafka's message, which is freed when the callback returns.
struct RDKafkaDelivery: Sendable {
    let token: UInt64
    let result: Result<KafkaDeliveryReport, KafkaError>
}

/// What librdkafka's C callbacks need from Swift; reached through the handle's opaque pointer.
final class RDKafkaClientContext: Sendable {
    let logger: Logger
    let onDelivery: (@Sendable (RDKafkaDelivery) -> Void)?
    /// Told once the handle can no longer be used; gets the underlying error, not `_FATAL`.
    let onFatalError: (@Sendable (KafkaError) -> Void)?

    init(
        logger: Logger, onDelivery: (@Sendable (RDKafkaDelivery) -> Void)?, onFatalError: (@Sendable (KafkaError) -> Void)?
    ) {
        self.logger = logger
        self.onDelivery = onDelivery
        self.onFatalError = onFatalError
    }

    /// The conf stores an unretained pointer: `RDKafkaClient` keeps this object alive for as long
    /// as the handle exists.
    func install(on conf: OpaquePointer, deliveryReports: Bool) {
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        // Required by `rd_kafka_set_log_queue`; cannot fail for a known property and valid value.
        rd_kafka_conf_set(conf, "log.queue", "true", nil, 0)
        rd_kafka_conf_set_log_cb(conf) { handle, level, facility, text in
            guard let handle, let context = RDKafkaClientContext.of(handle) else { return }
            context.logger.log(
                level: Logger.Level(syslogLevel: level),
                "\(text.map { String(cString: $0) } ?? "")",
                metadata: ["librdkafka.facility": "\(facility.map { String(cString: $0) } ?? "")"]
            )
        }
        rd_kafka_conf_set_error_cb(conf) { handle, code, reason, opaque in
            guard let opaque else { return }
            let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
            let error = KafkaError(rd_kafka_resp_err_t(rawValue: code), context: reason.map { String(cString: $0) } ?? "")
            context.logger.log(level: error.isFatal ? .critical : .error, "librdkafka error: \(error)")
            if error.isFatal, let handle {
                context.onFatalError?(RDKafkaClientContext.fatalError(of: handle))
            }
        }
        if deliveryReports {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let opaque, let message else { return }
                let context = Unmanaged<RDKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
                context.onDelivery?(RDKafkaDelivery(message.pointee))
            }
        }
    }

    /// The error that put the handle in its fatal state (`rd_kafka_fatal_error`).
    private static func fatalError(of handle: OpaquePointer) -> KafkaError {
        var reason = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &reason, reason.count)
        return KafkaError(
            code: KafkaErrorCode(code), message: "fatal: \(reason.nulTerminatedString)", isRetriable: false, isFatal: true)
    }

    private static func of(_ handle: OpaquePointer) -> RDKafkaClientContext? {
        rd_kafka_opaque(handle).map { Unmanaged<RDKafkaClientContext>.fromOpaque($0).takeUnretainedValue() }
    }
}

extension RDKafkaDelivery {
    init(_ message: rd_kafka_message_t) {
        token = UInt64(UInt(bitPattern: message._private))
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        if message.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            result = .success(KafkaDeliveryReport(topic: topic, partition: message.partition, offset: message.offset))
        } else {
            result = .failure(KafkaError(message.err, context: "delivery to \(topic)"))
        }
    }
}

extension Logger.Level {
    /// librdkafka logs with syslog severities (0 emergency … 7 debug).
    init(syslogLevel: Int32) {
        switch syslogLevel {
        case ...2: self = .critical
        case 3: self = .error
        case 4: self = .warning
        case 5: self = .notice
        case 6: self = .info
        default: self = .debug
        }
    }
}

extension Optional where Wrapped == [UInt8] {
    fileprivate func withOptionalUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
        switch self {
        case .some(let bytes): bytes.withUnsafeBytes { body($0) }
        case .none: body(nil)
        }
    }
}

/// An `rd_kafka_topic_partition_list_t` freed when the Swift value goes away.
private final class RDKafkaTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int) {
        pointer = rd_kafka_topic_partition_list_new(Int32(capacity))
    }

    deinit {
        rd_kafka_topic_partition_list_destroy(pointer)
    }

    func add(topic: String, partition: Int32, offset: Int64 = Int64(RD_KAFKA_OFFSET_INVALID)) {
        rd_kafka_topic_partition_list_add(pointer, topic, partition).pointee.offset = offset
    }
}

extension [CChar] {
    /// Reads an `errstr` buffer librdkafka filled in.
    fileprivate var nulTerminatedString: String {
        String(decoding: prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
