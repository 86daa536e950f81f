import Foundation
import TestSupport
import Testing

/// `dev-broker --port` keeps one bootstrap address across restarts, and clients work through it.
@Suite("dev-broker --port: the same bootstrap list from one start to the next")
struct DevBrokerPortTests {
    @Test("Two starts on one --port print the same bootstrap list, and an independent client produces and reads through it")
    func stableBootstrap() async throws {
        let port = try freeLoopbackPort()
        var printed: [String] = []
        for start in 1...2 {
            let broker = try RelayProcess.launch(
                ["dev-broker", "--brokers", "1", "--topic", "stable", "--partitions", "1", "--port", String(port)],
                label: "dev-broker-port-\(start)")
            defer { broker.stop() }
            try await waitUntil("dev-broker prints its bootstrap list", timeout: .seconds(60)) {
                broker.standardOutput.hasSuffix("\n") || !broker.isRunning
            }
            let bootstrap = broker.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            printed.append(bootstrap)
            let client = IndependentKafkaClient(bootstrapServers: bootstrap)
            let written = try await client.produceWithKafkaPython(
                topic: "stable", key: "k", value: "start \(start)", header: (name: "start", value: "\(start)"))
            #expect(written.offset == 0, "a fresh cluster each start")
            let records = try await client.consume(topic: "stable", count: 1)
            #expect(records.map(\.payload) == ["start \(start)"])
            broker.kill(SIGTERM)
            #expect(try await broker.waitForExit(timeout: .seconds(30)) == 0)
        }
        #expect(printed == ["127.0.0.1:\(port)", "127.0.0.1:\(port)"])
    }

    @Test("A --port another process holds is refused with one line and exit 2")
    func portInUse() async throws {
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(holder, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(holder, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)
        let result = try await runTool(try RelayProcess.executableURL().path, ["dev-broker", "--port", String(port)])
        #expect(result.status == 2)
        let lines = result.errorOutput.split(separator: "\n").filter { $0.hasPrefix("outbox-bridge:") }
        #expect(lines == ["outbox-bridge: --port \(port): cannot listen on 127.0.0.1:\(port): Address already in use"], "\(result.errorOutput)")
    }

    /// A port nothing listens on right now.
    private func freeLoopbackPort() throws -> UInt16 {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(probe, pointer, length) == 0 && getsockname(probe, pointer, &length) == 0
            }
        }
        guard bound else { throw TestEnvironmentError("cannot find a free loopback port") }
        return UInt16(bigEndian: address.sin_port)
    }
}
